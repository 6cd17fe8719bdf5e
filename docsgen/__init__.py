"""Pages of the documentation site made from the one place each fact lives.

`python -m docsgen` writes them into docs/; `python -m docsgen --check` says
which committed page differs from what its source makes now (the test suite
runs the check, so an edit to a source without the page fails by name)."""
