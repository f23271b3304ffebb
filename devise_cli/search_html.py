"""``devise search --html``: one self-contained page of thumbnails and scores.

Thumbnails are JPEG data URIs made with :func:`models.data.images.load_image` (the centre
square the model saw), so the page can be mailed or moved without the photos; each
thumbnail links to the original file. An image that can no longer be read (moved or
deleted since indexing) gets a placeholder naming the reason instead of breaking the page.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from pathlib import Path

THUMB_PX = 160

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.3rem; margin-bottom: .2rem; }
p.meta { color: #666; margin-top: 0; }
.query img { width: 120px; height: 120px; border: 2px solid #333; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 1rem; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
figure img, figure .missing { width: 160px; height: 160px; display: block; margin: 0 auto; }
figure .missing { background: #eee; color: #900; font-size: .8rem; overflow: hidden; }
figcaption { font-size: .8rem; margin-top: .4rem; word-break: break-all; }
.rank { font-weight: bold; } .score { float: right; font-family: monospace; }
"""


def thumbnail_uri(path: str | Path, size: int = THUMB_PX) -> str:
    """A ``data:image/jpeg;base64,...`` thumbnail; raises ImageError if the file cannot be read."""
    from PIL import Image

    from devise.prediction import load_image

    buf = io.BytesIO()
    Image.fromarray(load_image(path, size)).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _picture(path: str, alt: str) -> str:
    from devise import ImageError

    try:
        uri = thumbnail_uri(path)
    except ImageError as exc:
        return f'<div class="missing">cannot show: {html.escape(str(exc))}</div>'
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def render_page(query: str, kind: str, results: list[dict], index_path, n_images: int,
                query_image: Path | None = None) -> str:
    """The page as a string (results: dicts with rank, path, score)."""
    esc = html.escape
    head = f"<h1>{esc(query)}</h1>"
    if kind == "image" and query_image is not None:
        head = (f'<h1>Images like {esc(str(query_image))}</h1>'
                f'<div class="query">{_picture(str(query_image), "query")}</div>')
    when = _dt.datetime.now().isoformat(timespec="seconds")
    cards = []
    for r in results:
        uri = Path(r["path"]).absolute().as_uri()
        cards.append(
            f'<figure><a href="{esc(uri)}">{_picture(r["path"], Path(r["path"]).name)}</a>'
            f'<figcaption><span class="rank">#{r["rank"]}</span> <span class="score">{r["score"]:.3f}</span>'
            f'<br>{esc(r["path"])}</figcaption></figure>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>devise search: {esc(query)}</title><style>{STYLE}</style></head><body>\n"
        f"{head}\n<p class=\"meta\">{kind} query · top {len(results)} of {n_images} images in "
        f"{esc(str(index_path))} · cosine similarity · {esc(when)}</p>\n"
        f"<div class=\"grid\">\n" + "\n".join(cards) + "\n</div>\n</body></html>\n"
    )


def write_page(path, query, kind, results, index_path, n_images, query_image=None) -> Path:
    """Write :func:`render_page` atomically."""
    from devise.files import atomic_write

    with atomic_write(path, encoding="utf-8") as fh:
        fh.write(render_page(query, kind, results, index_path, n_images, query_image))
    return Path(path)
