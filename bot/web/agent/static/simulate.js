// The customer simulator: type as a buyer, see what the buyer would receive. Messages go to
// /agent/simulate/messages (they enter the server like a webhook's); replies come back through
// the simulator connector's outbox as Server-Sent Events (/agent/simulate/events).
"use strict";

const $ = (id) => document.getElementById(id);
const LABELS = {bot: "店铺客服（机器人）", agent: "店铺客服（人工）", customer: "我"};
let source = null;

function conversation() {
  let id = sessionStorage.getItem("kefu-sim-conversation");
  if (!id) {
    id = "sim-" + Math.random().toString(36).slice(2, 8);
    sessionStorage.setItem("kefu-sim-conversation", id);
  }
  return id;
}

function show(author, text, at) {
  const line = document.createElement("div");
  line.className = `msg ${author}`;
  if (author !== "system") {
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${LABELS[author] || author} · ${new Date(at || Date.now()).toLocaleTimeString("zh-CN")}`;
    line.append(meta);
  }
  line.append(text);
  $("messages").append(line);
  $("messages").scrollTop = $("messages").scrollHeight;
}

async function send(text) {
  text = text.trim();
  if (!text) return;
  $("status").textContent = "";
  const resp = await fetch("/agent/simulate/messages", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-Kefu-Agent": "1"},
    body: JSON.stringify({conversation_id: conversation(), text}),
  });
  if (resp.status === 401) { location.reload(); return; }
  if (!resp.ok) { $("status").textContent = (await resp.json()).error; return; }
  $("text").value = "";  // the line comes back on the stream, in order with the replies
}

function listen() {
  if (source) source.close();
  $("messages").replaceChildren();
  $("who").textContent = `会话 ${conversation()}`;
  source = new EventSource(`/agent/simulate/events?conversation=${encodeURIComponent(conversation())}`);
  source.addEventListener("open", () => $("live").classList.add("on"));
  source.addEventListener("error", () => $("live").classList.remove("on"));
  source.addEventListener("reply", (event) => {
    const line = JSON.parse(event.data);
    show(line.author, line.text, line.at);
  });
}

$("composer").addEventListener("submit", (e) => { e.preventDefault(); send($("text").value); });
for (const chip of $("chips").querySelectorAll("button")) chip.addEventListener("click", () => send(chip.textContent));
$("fresh").addEventListener("click", () => { sessionStorage.removeItem("kefu-sim-conversation"); listen(); });
listen();
$("text").focus();
