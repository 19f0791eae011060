// kefu agent sidebar: plain JS, no build step. Talks to /api/* with the page's HttpOnly cookie
// (plus the X-Kefu-Agent header the server asks of cookie-authenticated writes) and listens to
// /api/events (Server-Sent Events: the browser reconnects by itself and sends Last-Event-ID).
"use strict";

const $ = (id) => document.getElementById(id);
const REASONS = {
  human_request: "要求转人工", angry: "情绪激动", lost_parcel: "丢件", missing_item: "少件/漏发",
  quality_complaint: "质量投诉", counterfeit_claim: "质疑假货", bad_review_threat: "差评威胁",
  platform_dispute: "平台纠纷", images: "售后图片", low_confidence: "多次未识别", bulk: "大宗采购",
  agent_joined: "客服接入",
};
const GROUPS = {presale: "售前", aftersale: "售后", sales: "大客户"};
const PRIORITIES = {urgent: "紧急", high: "优先", normal: "普通"};
const AUTHORS = {customer: "顾客", bot: "机器人", agent: "客服"};
const STATUS = {queued: "排队中", assigned: "处理中", resolved: "已解决", released: "已交还"};

const state = {me: null, tickets: new Map(), conversations: [], current: null, view: null,
               fetchedAt: Date.now(), tab: "queue", reloadTimer: null};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function api(method, path, body) {
  const init = {method, credentials: "same-origin", headers: {"X-Kefu-Agent": "1"}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) { location.reload(); throw new Error("登录已失效"); }
  const data = await resp.json();
  if (!resp.ok) throw new Error(data.error || String(resp.status));
  return data;
}

function say(text, error = false) {
  const box = $("status");
  box.textContent = text;
  box.classList.toggle("error", error);
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function minutes(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// --- queue and conversation list ----------------------------------------------------------
function waiting(ticket) {
  if (ticket.status !== "queued") return ticket.waiting_s;
  return ticket.waiting_s + (Date.now() - state.fetchedAt) / 1000;
}

function lastCustomerWords(ticket) {
  const said = (ticket.summary.last_messages || []).filter((m) => m.from === "customer");
  return said.length ? said[said.length - 1].text : "";
}

function renderQueue() {
  const list = $("queue");
  const queued = [...state.tickets.values()].filter((t) => t.status === "queued");
  $("queue-count").textContent = queued.length;
  list.replaceChildren(...(queued.length ? queued.map(ticketCard) : [el("div", {class: "empty"}, "暂无排队的工单")]));
}

function ticketCard(ticket) {
  const breached = Date.parse(ticket.sla_due) < Date.now();
  return el("div", {class: `card ${ticket.priority}`, dataset: {ticket: ticket.id, conversation: ticket.conversation_id},
                    onclick: () => openConversation(ticket.conversation_id)},
    el("div", {class: "row"},
      el("span", {class: "who"}, ticket.conversation_id),
      el("span", {class: `tag ${ticket.priority}`}, PRIORITIES[ticket.priority] || ticket.priority),
      el("span", {class: "tag"}, GROUPS[ticket.group] || ticket.group),
      el("span", {class: breached ? "tag breach" : "tag", dataset: {wait: ticket.id}},
         (breached ? "已超时 " : "等待 ") + minutes(waiting(ticket)))),
    el("div", {class: "text"}, `${REASONS[ticket.reason] || ticket.reason}：${lastCustomerWords(ticket)}`),
    el("div", {class: "row"}, el("button", {class: "primary", onclick: (e) => { e.stopPropagation(); accept(ticket.id); }}, "接单")));
}

function renderMine() {
  const list = $("mine");
  const rows = state.conversations;
  $("mine-count").textContent = rows.filter((c) => c.mine).length;
  list.replaceChildren(...(rows.length ? rows.map((c) => el("div", {
    class: "card", dataset: {conversation: c.conversation_id}, onclick: () => openConversation(c.conversation_id)},
    el("div", {class: "row"},
      el("span", {class: "who"}, c.conversation_id),
      c.mine ? el("span", {class: "tag urgent"}, "我的") : null,
      c.ticket_status ? el("span", {class: "tag"}, STATUS[c.ticket_status]) : el("span", {class: "tag"}, "机器人")),
    el("div", {class: "text"}, `${AUTHORS[c.last_message.author]}：${c.last_message.text}`))) : [el("div", {class: "empty"}, "暂无会话")]));
}

async function loadLists() {
  const [tickets, conversations] = await Promise.all([api("GET", "/api/tickets"), api("GET", "/api/conversations")]);
  state.tickets = new Map(tickets.tickets.map((t) => [t.id, t]));
  state.fetchedAt = Date.now();
  state.conversations = conversations.conversations;
  renderQueue();
  renderMine();
}

function showTab(name) {
  state.tab = name;
  for (const button of document.querySelectorAll(".tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  $("queue").classList.toggle("hidden", name !== "queue" || state.current !== null);
  $("mine").classList.toggle("hidden", name !== "mine" || state.current !== null);
}

// --- one conversation ---------------------------------------------------------------------
async function openConversation(id) {
  state.current = id;
  $("conversation").classList.remove("hidden");
  document.querySelector(".tabs").classList.add("hidden");
  showTab(state.tab);
  $("editor").value = "";
  $("search").value = "";
  $("results").replaceChildren();
  say("");
  await loadConversation();
}

function closeConversation() {
  state.current = null;
  state.view = null;
  $("conversation").classList.add("hidden");
  document.querySelector(".tabs").classList.remove("hidden");
  showTab(state.tab);
}

async function loadConversation() {
  if (!state.current) return;
  try {
    state.view = await api("GET", `/api/conversations/${encodeURIComponent(state.current)}`);
  } catch (error) {
    say(error.message, true);
    return;
  }
  renderConversation();
}

function scheduleReload() {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(loadConversation, 150);
}

function renderConversation() {
  const v = state.view;
  const ticket = v.ticket;
  $("conv-title").textContent = v.customer_id;
  $("conv-ticket").textContent = ticket ? `${STATUS[ticket.status]} · ${REASONS[ticket.reason] || ticket.reason}` : "机器人接待中";
  $("summary").textContent = v.summary;
  $("slots").replaceChildren(...Object.entries(v.slots).map(([name, value]) => el("span", {},
    `${name}：`, el("b", {dataset: {slot: name}}, String(value)),
    v.masked.includes(name) ? el("button", {class: "link", onclick: () => reveal(name)}, "显示") : null)));
  const box = $("messages");
  box.replaceChildren(...v.messages.map((m) => el("div", {class: `msg ${m.author}`},
    el("span", {class: "meta"}, `${AUTHORS[m.author]}${m.agent ? " " + m.agent : ""} · ${new Date(m.at).toLocaleTimeString("zh-CN")}`),
    m.text)));
  box.scrollTop = box.scrollHeight;
  const mine = ticket && ticket.assignee === state.me.id;
  $("accept").classList.toggle("hidden", !(ticket && ticket.status === "queued"));
  for (const id of ["release", "resolve", "transfer"]) $(id).classList.toggle("hidden", !ticket || (!mine && ticket.status !== "queued"));
  $("suggestions").replaceChildren(...v.suggestions.map((s, i) => el("li", {
    dataset: {phrase: s.id}, title: `${s.intent} · ${s.id}`, onclick: () => sendText(s.text)},
    el("kbd", {}, String(i + 1)), el("span", {}, s.text), el("span", {class: "score"}, s.score.toFixed(2)))));
}

async function reveal(slot) {
  try {
    const answer = await api("POST", `/api/conversations/${encodeURIComponent(state.current)}/reveal`, {slot});
    const shown = document.querySelector(`[data-slot="${slot}"]`);
    if (shown) shown.textContent = String(answer.value);
  } catch (error) { say(error.message, true); }
}

async function sendText(text) {
  text = text.trim();
  if (!text || !state.current) return;
  const key = newKey();  // one key per send: retries below reuse it, so the customer gets it once
  const path = `/api/conversations/${encodeURIComponent(state.current)}/messages`;
  say("发送中…");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const answer = await api("POST", path, {text, idempotency_key: key});
      say(answer.delivery === "failed" ? "发送失败：平台未接收" : "已发送", answer.delivery === "failed");
      $("editor").value = "";
      await loadConversation();
      return;
    } catch (error) {
      if (error instanceof TypeError && attempt < 2) continue;  // network: retry with the same key
      say(error.message, true);
      return;
    }
  }
}

async function ticketAction(action, body) {
  const ticket = state.view && state.view.ticket;
  if (!ticket) return;
  try {
    await api("POST", `/api/tickets/${ticket.id}/${action}`, body);
    say({accept: "已接单", release: "已交还机器人", resolve: "已解决", transfer: "已转接"}[action]);
    await Promise.all([loadConversation(), loadLists()]);
  } catch (error) { say(error.message, true); }
}

async function accept(ticketId) {
  try {
    const answer = await api("POST", `/api/tickets/${ticketId}/accept`);
    await loadLists();
    await openConversation(answer.ticket.conversation_id);
    say("已接单");
  } catch (error) { alert(error.message); }
}

// --- phrasebook search as you type --------------------------------------------------------
let searchTimer = null;
function onSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $("search").value.trim();
    if (!q) { $("results").replaceChildren(); return; }
    const found = await api("GET", `/api/phrasebook?q=${encodeURIComponent(q)}`);
    if ($("search").value.trim() !== q) return;  // typed on meanwhile
    $("results").replaceChildren(...found.results.map((r) => el("li", {
      title: r.question, dataset: {phrase: r.id}, onclick: () => { $("editor").value = r.text; $("editor").focus(); }}, r.text)));
  }, 120);
}

// --- keys ---------------------------------------------------------------------------------
function onKey(event) {
  if (!state.view) return;
  const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement.tagName);
  const digit = /^(?:Digit|Numpad)([1-3])$/.exec(event.code);
  if (event.key === "Escape") { document.activeElement.blur(); return; }
  if (!digit || typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const suggestion = state.view.suggestions[Number(digit[1]) - 1];
  if (!suggestion) return;
  event.preventDefault();
  if (event.shiftKey) {
    $("editor").value = suggestion.text;
    $("editor").focus();
  } else {
    sendText(suggestion.text);
  }
}

// --- live ---------------------------------------------------------------------------------
function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => $("live").classList.add("on"));
  source.addEventListener("error", () => $("live").classList.remove("on"));
  source.addEventListener("hello", () => loadLists().catch((e) => say(e.message, true)));
  source.addEventListener("ticket", (event) => {
    const ticket = JSON.parse(event.data).ticket;
    if (ticket.status === "queued" || ticket.status === "assigned") state.tickets.set(ticket.id, ticket);
    else state.tickets.delete(ticket.id);
    state.fetchedAt = Date.now();
    renderQueue();
    api("GET", "/api/conversations").then((c) => { state.conversations = c.conversations; renderMine(); });
    if (state.current === ticket.conversation_id) scheduleReload();
  });
  source.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (state.current === data.conversation_id) scheduleReload();
    api("GET", "/api/conversations").then((c) => { state.conversations = c.conversations; renderMine(); });
  });
  source.addEventListener("presence", (event) => {
    const data = JSON.parse(event.data);
    if (state.me && data.agent === state.me.id) $("presence").value = data.status;
  });
}

async function start() {
  state.me = await api("GET", "/api/me");
  $("me").textContent = `${state.me.name} · ${state.me.groups.map((g) => GROUPS[g]).join("/")}`;
  $("presence").value = state.me.status;
  const everyone = await api("GET", "/api/presence");
  for (const other of everyone.agents.filter((a) => a.id !== state.me.id)) {
    $("transfer").append(el("option", {value: `agent:${other.id}`}, `转给 ${other.name}`));
  }
  $("presence").addEventListener("change", async (e) => {
    try { await api("PUT", "/api/presence", {status: e.target.value}); } catch (error) { alert(error.message); }
  });
  $("signout").addEventListener("click", async () => { await api("DELETE", "/api/session"); location.reload(); });
  for (const button of document.querySelectorAll(".tabs button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  $("back").addEventListener("click", closeConversation);
  $("accept").addEventListener("click", () => ticketAction("accept"));
  $("release").addEventListener("click", () => ticketAction("release"));
  $("resolve").addEventListener("click", () => ticketAction("resolve"));
  $("transfer").addEventListener("change", (e) => {
    const [kind, value] = e.target.value.split(":");
    e.target.value = "";
    if (kind) ticketAction("transfer", {[kind]: value});
  });
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); sendText($("editor").value); });
  $("editor").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendText($("editor").value); }
  });
  $("search").addEventListener("input", onSearch);
  document.addEventListener("keydown", onKey);
  setInterval(() => {
    for (const node of document.querySelectorAll("[data-wait]")) {
      const ticket = state.tickets.get(Number(node.dataset.wait));
      if (ticket) node.textContent = (Date.parse(ticket.sla_due) < Date.now() ? "已超时 " : "等待 ") + minutes(waiting(ticket));
    }
  }, 1000);
  connect();
}

start().catch((error) => say(error.message, true));
