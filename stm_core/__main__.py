import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl+C while the modules load: one line, as later (QA pass 57: a traceback)
    print("interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
