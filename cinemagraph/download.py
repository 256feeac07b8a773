"""Download the official checkpoints, verified, into ``pretrained/``.

    cinemagraph download [NAMES ...] [--dir pretrained] [--overwrite]
    python -m cinemagraph.download [NAMES ...]

NAMES are sources (:data:`SOURCES`; default: all). Each file is fetched from its official
address with a progress bar to ``NAME.partial``, then verified, then renamed to its official
name; a failed check deletes the partial file and exits with an error:

* the size: a transfer shorter than the server announced is refused;
* the SHA-256: against the recorded digest where one is known, and against the digest
  prefix that DPT's file names carry (``...-501f0c75.pt``, as ``torch.hub`` checks);
* the state-dict layout: the file is loaded strictly into every registered model it serves
  (:func:`cinemagraph.models.create`); models not registered yet are reported, not checked.

The 3D Cinemagraphy checkpoints come as one archive on Google Drive; its members are
extracted by file name. ``$CINEMAGRAPH_DOWNLOAD_MIRROR`` (a base URL) replaces every address
by ``MIRROR/FILE``, for mirrors and for the tests, which serve files on loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)

ENV_MIRROR = "CINEMAGRAPH_DOWNLOAD_MIRROR"


@dataclass
class Source:
    """One downloadable file: its official name and address, what verifies it, and the
    models it serves. ``members``: for an archive, the files to extract (by base name) and
    the models each serves."""

    file: str
    url: str
    sha256: str | None = None
    models: tuple[str, ...] = ()
    members: dict = field(default_factory=dict)
    note: str = ""

    @property
    def hash_prefix(self) -> str | None:
        """The digest prefix in a torch.hub-style name (``name-<hex>.ext``), if any."""
        match = re.search(r"-([0-9a-f]{8,})\.[A-Za-z]+$", self.file)
        return match.group(1) if match else None


SOURCES: dict[str, Source] = {
    "dpt_hybrid": Source("dpt_hybrid-midas-501f0c75.pt",
                         "https://github.com/intel-isl/DPT/releases/download/1_0/"
                         "dpt_hybrid-midas-501f0c75.pt", models=("dpt_hybrid",)),
    "dpt_large": Source("dpt_large-midas-2f21e586.pt",
                        "https://github.com/intel-isl/DPT/releases/download/1_0/"
                        "dpt_large-midas-2f21e586.pt", models=("dpt_large",)),
    "inpaint_depth_net": Source("depth-model.pth", "https://filebox.ece.vt.edu/~jbhuang/project/"
                                "3DPhoto/model/depth-model.pth", models=("inpaint_depth_net",)),
    "inpaint_color_net": Source("color-model.pth", "https://filebox.ece.vt.edu/~jbhuang/project/"
                                "3DPhoto/model/color-model.pth", models=("inpaint_color_net",)),
    "cinemagraphy": Source("3d-cinemagraphy-ckpts.zip",
                           "https://drive.usercontent.google.com/download?id="
                           "1ROxvB7D-vNYl4eYmIzZ5Gitg84amMd19&export=download&confirm=t",
                           members={"model_150000.pth": ("feature_net", "img_decoder"),
                                    "sceneflow_model.pth": ("motion_net",)},
                           note="the archive of the original repository's README "
                                "(Google Drive); not verified against the live service here"),
}


def _url(source: Source) -> str:
    mirror = os.environ.get(ENV_MIRROR)
    return f"{mirror.rstrip('/')}/{source.file}" if mirror else source.url


def fetch(url: str, dest: Path, sha256: str | None = None, hash_prefix: str | None = None,
          progress: bool = True, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` (which must not be kept on failure); return its SHA-256."""
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=dest.name)
            try:
                with open(dest, "wb") as f:
                    while True:
                        chunk = response.read(1 << 20)
                        if not chunk:
                            break
                        f.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except http.client.IncompleteRead as e:
        raise UserError(f"{url}: the transfer broke off after {received + len(e.partial)} "
                        f"bytes; try again") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(f"cannot download {url} ({reason}); check the connection, or put the "
                        f"file in pretrained/ by hand") from None
    if total and received != total:
        raise UserError(f"{url}: got {received} of {total} bytes; try again")
    hexdigest = digest.hexdigest()
    if sha256 and hexdigest != sha256:
        raise UserError(f"{dest.name}: SHA-256 {hexdigest} does not match the recorded "
                        f"{sha256}; the file is damaged or not the official one")
    if hash_prefix and not hexdigest.startswith(hash_prefix):
        raise UserError(f"{dest.name}: SHA-256 {hexdigest[:16]}... does not start with "
                        f"{hash_prefix}, as its name says it must")
    return hexdigest


def check_layout(path: Path, models: tuple[str, ...]) -> list[str]:
    """Load ``path`` strictly into each registered model of ``models``; return those checked."""
    from .models.zoo import REGISTRY, create

    checked = []
    for name in models:
        if name in REGISTRY:
            create(name, checkpoint=path)
            checked.append(name)
        else:
            log.info("%s: layout for %s not checked (the model is not implemented yet)",
                     path.name, name)
    return checked


def download(names: list[str], directory: Path, overwrite: bool = False,
             sources: dict[str, Source] | None = None, progress: bool = True) -> list[Path]:
    """Fetch, verify and install the sources ``names`` into ``directory``."""
    sources = SOURCES if sources is None else sources
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise UserError(f"unknown download(s) {', '.join(unknown)}: use {', '.join(sources)}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        source = sources[name]
        targets = [directory / m for m in source.members] or [directory / source.file]
        if all(t.exists() for t in targets) and not overwrite:
            log.info("%s: already in %s (pass --overwrite to fetch again)", name, directory)
            continue
        partial = directory / (source.file + ".partial")
        try:
            fetch(_url(source), partial, source.sha256, source.hash_prefix, progress)
            if source.members:
                written += _extract(partial, directory, source)
            else:
                # Name the partial file like the official one for the loader (suffix matters).
                checked = check_layout(partial, source.models)
                partial.replace(targets[0])
                log.info("%s: verified (%s), saved as %s", name,
                         ", ".join(["SHA-256"] + [f"layout of {c}" for c in checked]), targets[0])
                written.append(targets[0])
        finally:
            partial.unlink(missing_ok=True)
    return written


def _extract(archive: Path, directory: Path, source: Source) -> list[Path]:
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UserError(f"{source.file}: not a zip archive (the server may have sent a web "
                        "page instead); download it by hand into pretrained/") from None
    written = []
    with bundle:
        by_name = {Path(info.filename).name: info for info in bundle.infolist() if not info.is_dir()}
        for member, models in source.members.items():
            if member not in by_name:
                raise UserError(f"{source.file} has no {member}")
            partial = directory / (member + ".partial")
            try:
                with bundle.open(by_name[member]) as src, open(partial, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                checked = check_layout(partial, models)
                partial.replace(directory / member)
            finally:
                partial.unlink(missing_ok=True)
            log.info("%s: extracted and checked (%s)", member, ", ".join(checked) or "no model yet")
            written.append(directory / member)
    return written


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(prog="cinemagraph download",
                                description="Fetch and verify the official checkpoints.")
    p.add_argument("names", nargs="*", help=f"among {', '.join(SOURCES)} (default: all)")
    p.add_argument("--dir", type=Path, default=Path("pretrained"), help="where to put them")
    p.add_argument("--overwrite", action="store_true", help="fetch files that are present")
    args = p.parse_args(argv)
    try:
        download(args.names or list(SOURCES), args.dir, args.overwrite)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
