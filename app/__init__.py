"""The PySide6 annotation application on top of `stm_core.session.AnnotationSession`.

Model layer (no widgets): `document` (the open video as edited), `editor_state`, `controller` (open, import,
export, settings), `propagation` + `workers` (background threads), `autosave` + `workspace` (never lose
work). Pure helpers: `painting`, `overlay`, `undo`, `objects`, `export`, `demo_clip`, `shortcuts`.
Views in `views/` render that state and forward input; `main_window` composes them.
"""
