"""``python -m tasklets`` is the ``tasklets`` command."""

from tasklets.cli import console_main

console_main()
