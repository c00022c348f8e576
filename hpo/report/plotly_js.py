"""How a report carries plotly.js and its figures: the library compressed, the figures as JSON.

plotly.js is 4.8 MB of JavaScript, most of a report. The page carries it once,
gzip-compressed and base64-encoded (about 2 MB): :func:`plotly_script` makes the
one script tag that holds it, decompresses it with the browser's own
``DecompressionStream`` (Chromium 80, Firefox 113, Safari 16.4 and later), runs
it, then draws every figure that :func:`figure_html` placed on the page. Nothing
is fetched, so the page works offline and opened from a file:// URL.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from typing import Any


def figure_html(figure, div_id: str) -> str:
    """A figure's place on the page: an empty div, and the figure as JSON for the loader to draw.

    The div takes the figure's own width and height where its layout sets them (as plotly's
    ``to_html`` does; the slice plots are wider than the page). plotly's JSON keeps numpy
    arrays packed (see ``report_view.compact``) and escapes ``<``, so it cannot close its tag.
    """
    layout = figure.layout
    size = {side: layout[side] or layout.template.layout[side] for side in ("width", "height")}
    style = "".join(f"{side}:{px}px;" for side, px in size.items() if px)
    return (
        f"<div id='{div_id}' class='plotly-graph-div' style='{style}'></div>"
        f"<script type='application/json' data-plot='{div_id}'>{figure.to_json()}</script>"
    )


@functools.cache
def _packed_plotlyjs() -> tuple[str, str]:
    """plotly.js's version, and the library gzip-compressed and base64-encoded (0.2 s, once)."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
    return get_plotlyjs_version(), base64.b64encode(packed).decode("ascii")


def plotly_script(config: dict[str, Any]) -> str:
    """The script tag that carries plotly.js compressed and draws the page's figures with it.

    It goes after the last figure. In the browser it decodes the base64 text, gunzips it with
    ``DecompressionStream``, runs the library as an inline script (which defines
    ``window.Plotly``), then calls ``Plotly.newPlot`` with ``config`` for each figure from
    :func:`figure_html`. Where the browser cannot, each figure's place says so.
    """
    version, packed = _packed_plotlyjs()
    return f"""<script>
// plotly.js v{version} (Copyright Plotly, Inc., MIT license), gzip-compressed and base64-encoded
(async () => {{
  const text = atob("{packed}");
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const source = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const library = document.createElement("script");
  library.textContent = await new Response(source).text();
  document.head.append(library);  // an inline script runs as it is inserted
  const config = {json.dumps(config)};
  await Promise.all(Array.from(document.querySelectorAll("script[data-plot]"), (spec) => {{
    const figure = JSON.parse(spec.textContent);
    return Plotly.newPlot(spec.dataset.plot, figure.data, figure.layout, config);
  }}));
}})().catch((error) => {{
  for (const div of document.querySelectorAll(".plotly-graph-div:not(.js-plotly-plot)")) {{
    div.textContent = `This browser could not draw the plot: ${{error}}`;
  }}
  throw error;
}});
</script>"""
