"""`python -m bot.cli` is `kefu`."""

from bot.cli import main

main()
