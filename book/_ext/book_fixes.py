"""Small Sphinx fixes for the book build.

sphinx-thebe 0.3.1 (and sphinx-togglebutton) add their inline scripts once per `env-before-read-docs`
event, which Jupyter Book 1.x fires more than once, so pages declared `const THEBE_JS_URL` twice
and the browser console showed a SyntaxError. Identical inline scripts are dropped here.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: the list is the builder's, which later handlers read


def setup(app):
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", _dedupe_scripts, priority=10)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
