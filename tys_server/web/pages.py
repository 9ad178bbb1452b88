"""The HTML pages' templates, shipped in ``templates/`` as package data.

``page.html`` is the frame both pages share (language, charset, the meta refresh every
``refresh_s`` seconds, the viewport); ``board.html`` (/board) and ``status.html``
(/status) extend it with their title, style and body. Tornado escapes every ``{{ }}``;
only the status page's server-drawn SVG charts go in raw.
"""

from __future__ import annotations

import importlib.resources

import tornado.template

TEMPLATE_DIR = importlib.resources.files("tys_server.web") / "templates"


def page_templates() -> tornado.template.Loader:
    """A loader of the page templates (it compiles and caches each on first use)."""
    return tornado.template.Loader(str(TEMPLATE_DIR))
