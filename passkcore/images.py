"""Images of problems: read from a problem file's fields, checked before sampling, kept in the run.

A problem file gives an image as a path relative to the problem file, raw bytes (a Parquet binary
column, or Hugging Face datasets' ``{"bytes", "path"}`` struct), or a base64 ``data:`` URI (JSON), one
value or a list of them. Each is decoded with PIL when the problems are loaded, so a missing file or
undecodable bytes is a ValueError naming the problem's record and field before any sampling starts.

While loading, a Problem's ``images`` hold locators: an absolute file path or a ``data:`` URI. A run
keeps its own copy, content-addressed: ``RUN/images/<sha256>.<ext>``, and RUN/problems.jsonl names
those files (``images/<sha256>.<ext>``, relative to the run). The file names carry the digests, so
the run's problem-set digest changes when an image does, and every sample row records the digest of
its prompt's images (``image_digest``): a resumed run tells changed images apart from unchanged ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from passkcore._atomic import write_atomically

IMAGES_DIR = "images"
_DATA = "data:"
# PIL format name -> file extension of the run's copy (the bytes are kept as they came).
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}


def decode_image(data: bytes, where: str) -> Any:
    """A loaded PIL image from encoded bytes; ValueError naming ``where`` when they do not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{where}: not a decodable image ({type(exc).__name__}: {exc})") from None


def image_format(data: bytes) -> str:
    """The file extension for encoded image bytes (``png``, ``jpg``, ...; ``img`` when unknown)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return _EXTENSIONS.get(str(image.format), "img")


def data_uri(data: bytes) -> str:
    """A base64 ``data:`` URI of encoded image bytes."""
    return f"data:image/{image_format(data)};base64,{base64.b64encode(data).decode()}"


def _uri_bytes(uri: str, where: str) -> bytes:
    head, sep, payload = uri.partition(",")
    if not sep or not head.endswith(";base64"):
        raise ValueError(f"{where}: a data URI image must be 'data:image/...;base64,<data>', got {uri[:40]!r}")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{where}: the data URI's base64 does not decode ({exc})") from None


def locator_bytes(locator: str, where: str = "image", root: Optional[Path] = None) -> bytes:
    """The encoded bytes behind a locator (a ``data:`` URI or a file path, relative ones under ``root``)."""
    if locator.startswith(_DATA):
        return _uri_bytes(locator, where)
    path = Path(locator)
    if not path.is_absolute() and root is not None:
        path = root / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{where}: image file {str(path)!r} cannot be read ({exc.strerror or exc})") from None


def field_locators(value: Any, base: Path, where: str) -> list[str]:
    """Checked locators of one image field's value (one image or a list), every image decoded once."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"{where}: the image list is empty")
    out = []
    for k, item in enumerate(values):
        at = where if len(values) == 1 else f"{where}[{k}]"
        if isinstance(item, dict):  # Hugging Face datasets' Image feature in Parquet: {"bytes", "path"}
            item = item.get("bytes") if item.get("bytes") is not None else item.get("path")
        if isinstance(item, (bytes, bytearray, memoryview)):
            data = bytes(item)
            if not data:
                raise ValueError(f"{at}: empty image bytes")
            decode_image(data, at)
            out.append(data_uri(data))
        elif isinstance(item, str) and item:
            if item.startswith(_DATA):
                decode_image(_uri_bytes(item, at), at)
                out.append(item)
            else:
                path = (base / item).resolve()
                if not path.is_file():
                    raise ValueError(f"{at}: image file {str(path)!r} does not exist")
                decode_image(path.read_bytes(), at)
                out.append(str(path))
        else:
            raise ValueError(f"{at}: an image must be a path, bytes or a data URI, got {type(item).__name__}")
    return out


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_image_name(locator: str) -> Optional[str]:
    """The digest in a run's image name (``images/<sha256>.<ext>``), or None for another locator."""
    parts = locator.split("/")
    if len(parts) == 2 and parts[0] == IMAGES_DIR and len(parts[1].split(".")[0]) == 64:
        return parts[1].split(".")[0]
    return None


def images_digest(images: Optional[Sequence[str]], root: Optional[Path] = None) -> Optional[str]:
    """One digest of a prompt's images in order (None without images): the sha256 of their digests."""
    if not images:
        return None
    digests = [run_image_name(x) or digest_of(locator_bytes(x, "image", root)) for x in images]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def keep_images(root: Path, problems: Sequence[Any], write: bool = True) -> list[Any]:
    """The problems with their images named as the run keeps them (``images/<sha256>.<ext>``), and
    copied into ``root/images`` (once, by digest) unless ``write`` is False; problems without images
    are returned as they are."""
    out = []
    for problem in problems:
        if not problem.images or all(run_image_name(x) for x in problem.images):
            out.append(problem)
            continue
        names = []
        for k, locator in enumerate(problem.images):
            data = locator_bytes(locator, f"problem {problem.id!r}: field 'images'[{k}]")
            name = f"{IMAGES_DIR}/{digest_of(data)}.{image_format(data)}"
            if write and not (root / name).is_file():
                write_atomically(root / name, _bytes_writer(data))
            names.append(name)
        out.append(replace(problem, images=names))
    return out


def _bytes_writer(data: bytes) -> Callable[[Path], object]:
    return lambda tmp: tmp.write_bytes(data)


def resolve_images(root: Path, problems: Sequence[Any]) -> list[Any]:
    """Run problems with their image names made absolute paths under ``root`` (what the samplers open)."""
    return [replace(p, images=[str(root / x) if run_image_name(x) else x for x in p.images]) if p.images else p
            for p in problems]


def open_images(images: Sequence[str], where: str = "image") -> list[Any]:
    """Loaded PIL images (RGB) of locators, in order."""
    return [decode_image(locator_bytes(x, f"{where}[{k}]"), f"{where}[{k}]").convert("RGB")
            for k, x in enumerate(images)]

