"""What the pages' script polls: the parts of a page that change, rendered again.

A page marks each such part `data-region="NAME"` and includes the template
`admin/regions/NAME.html` there; its live endpoint answers `{"regions": {NAME: html}}`
from the very same templates, and the script swaps in what changed. One rendering
serves the first load and every refresh.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template


def region_html(name: str, **context: Any) -> str:
    return render_template(f"admin/regions/{name}.html", **context)


def regions_response(names: list[str], **context: Any) -> Response:
    return jsonify({"regions": {name: region_html(name, **context) for name in names}})
