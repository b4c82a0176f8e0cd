"""The side-by-side scripts' one shared helper: their result file written whole or not at all (a job that finds it
skips the run, so a file cut short by a kill must never be left).  Kept apart from the project's ``utils``, which
the authors' own ``utils`` packages would shadow once their code is on the path."""
import json
import os
from pathlib import Path


def write(payload, path):
    """``payload`` as indented JSON at ``path``, through a temporary file beside it and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(temporary, path)
