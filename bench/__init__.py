"""The benchmark: bin/bench runs `python -m bench` (__main__.py); README.md says what each module measures."""
