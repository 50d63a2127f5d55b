"""Tests of the ``tasklets`` command line (a package, so its module names do not clash with other suites')."""
