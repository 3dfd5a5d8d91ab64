"""Code generation: render a spec into HLS C++ (and its manifest) with one Jinja2 environment.

``generate(spec, out_dir)`` writes ``OUT/hls/...`` and ``OUT/manifest.json``; ``context(spec)``
is everything the templates print, computed in Python.
"""

from .context import context, file_names
from .env import environment, template_hash
from .generate import build_manifest, generate, read_manifest, render_files

__all__ = [
    "build_manifest", "context", "environment", "file_names", "generate", "read_manifest",
    "render_files", "template_hash",
]
