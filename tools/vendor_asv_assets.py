"""Make the published asv dashboard work offline: serve its CDN scripts and styles from the site itself.

asv's ``index.html`` loads jQuery, flot, bootstrap and a few plugins from public CDNs; a machine
without internet access (CI here, or any sandbox) then shows only "Can not determine continental
origin of swallow". This script fetches the same files from the npm registry with ``npm pack``
(cached in ``.asv/vendor-cache``), copies them to ``<html>/vendor/`` and points ``index.html`` at them.
Run after ``asv publish`` (``nox -s history`` does). Exit status 2 when a file cannot be had.

    python tools/vendor_asv_assets.py [--html-dir .asv/html] [--cache .asv/vendor-cache]
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

# CDN address in asv's index.html -> (npm package@version, file inside the package)
ASSETS: dict[str, tuple[str, str]] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": ("flot@0.8.3", "jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": ("flot@0.8.3", "jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        ("flot@0.8.3", "jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        ("flot@0.8.3", "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        ("flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"),
    # cdnjs's stupidtable 1.0.1 is not on npm; 1.1.3 is the same plugin with the same API
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        ("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5@2.19.0", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap@3.1.1", "dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        ("bootstrap@3.1.1", "dist/css/bootstrap.min.css"),
}


def _tarball(spec: str, cache: Path) -> Path:
    name, _, version = spec.rpartition("@")
    path = cache / f"{name.replace('/', '-').lstrip('@')}-{version}.tgz"
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found (needed once to fetch the dashboard's scripts)")
        proc = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", str(cache)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            raise RuntimeError(f"npm pack {spec} failed: {proc.stderr[-1000:]}")
    return path


def _local_tag(match: re.Match[str], url: str, local: str) -> str:
    tag = re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", match.group(0))
    return tag.replace(url, local)


def vendor(html: Path, cache: Path) -> int:
    index = html / "index.html"
    text = index.read_text(encoding="utf-8")
    cache.mkdir(parents=True, exist_ok=True)
    out = html / "vendor"
    out.mkdir(exist_ok=True)
    done = 0
    for url, (spec, member) in ASSETS.items():
        if url not in text:
            continue  # already vendored, or an asv version without it
        target = out / f"{spec.replace('@', '-').replace('/', '-')}-{Path(member).name}"
        if not target.is_file():
            with tarfile.open(_tarball(spec, cache)) as tar:
                src = tar.extractfile(f"package/{member}")
                if src is None:
                    raise RuntimeError(f"{spec} has no {member}")
                target.write_bytes(src.read())
        # the tag's Subresource Integrity hash is the CDN file's (some vendored files are the
        # unminified sources), so it goes; the file is served by the dashboard's own origin
        text = re.sub(r"<(script|link)\b[^>]*" + re.escape(url) + r"[^>]*>",
                      functools.partial(_local_tag, url=url, local=f"vendor/{target.name}"), text)
        done += 1
    left = sorted(set(re.findall(r'(?:src|href)="(https?://[^"]+\.(?:js|css))"', text)))
    index.write_text(text, encoding="utf-8")
    print(f"vendored {done} dashboard assets into {out}")
    if left:
        print("still loaded from the internet: " + ", ".join(left), file=sys.stderr)
        return 2
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html-dir", default=".asv/html")
    parser.add_argument("--cache", default=".asv/vendor-cache")
    args = parser.parse_args()
    html = Path(args.html_dir)
    if not (html / "index.html").is_file():
        print(f"vendor_asv_assets: no {html / 'index.html'} (run asv publish first)", file=sys.stderr)
        return 2
    try:
        return vendor(html, Path(args.cache))
    except (RuntimeError, KeyError, tarfile.TarError) as exc:
        print(f"vendor_asv_assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
