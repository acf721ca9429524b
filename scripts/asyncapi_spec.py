"""The official AsyncAPI JSON Schemas, from the npm package `@asyncapi/specs`, cached once.

`scripts/asyncapi/package-lock.json` pins the package and its integrity hash; `npm ci` installs
exactly that into a cache folder that outlives clones (`~/.cache/prc`, as the Kafka jars),
named by the lock's digest. `make test` installs it up front (`scripts.stack test-deps`); the
tests that validate docs/asyncapi.yaml call `schema_path` too, so they also run alone. Nothing
is fetched at test time once the cache holds it, and a missing npm is an error, never a skip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from scripts.kafka_broker import CACHE
from scripts.servers import StackError, apt_install, log

LOCK_DIR = Path(__file__).resolve().parent / "asyncapi"
_FILES = ("package.json", "package-lock.json")


def specs_dir() -> Path:
    """The installed `@asyncapi/specs` package folder, installed with npm on first use."""
    digest = hashlib.sha256(b"".join((LOCK_DIR / f).read_bytes() for f in _FILES)).hexdigest()
    home = CACHE / f"asyncapi-specs-{digest[:12]}"
    package = home / "node_modules" / "@asyncapi" / "specs"
    if (home / ".complete").exists():
        return package
    npm = apt_install("npm", "npm")
    log(f"installing @asyncapi/specs with npm into {home} (first run only)")
    # Install beside the final folder and rename it into place: a concurrent run or an
    # interrupted one never leaves a half-filled folder that looks complete.
    work = home.with_name(f"{home.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in _FILES:
        shutil.copyfile(LOCK_DIR / name, work / name)
    try:
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=work,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise StackError(f"npm could not install @asyncapi/specs: {exc}") from exc
    (work / ".complete").write_text(digest)
    try:
        work.rename(home)
    except OSError:  # another run finished first: keep its copy
        shutil.rmtree(work, ignore_errors=True)
    return package


def schema_path(version: str) -> Path:
    """The bundled JSON Schema of AsyncAPI `version` (all its definitions inlined)."""
    path = specs_dir() / "schemas" / f"{version}.json"
    if not path.is_file():
        raise StackError(f"@asyncapi/specs has no schema for AsyncAPI {version} ({path})")
    return path
