"""Unit tests of the core runtime: futures, tasks, loop, combinators, sync."""
