"""The window's controllers: the Qt side of what the user does, one class per file, named after it.

- ``project_controller``: :class:`ProjectController` — opening, the image shown, autosave, predictions.
- ``label_saver``: :class:`LabelSaver` — the autosave, saving labels in a worker, flushing on closing.
- ``class_changes``: :class:`ClassChanges` — the class table's changes and their undo.
- ``segment_controller``: :class:`SegmentController` — the active model, Segment and Segment All.
- ``training_controller``: :class:`TrainingController` — fine-tuning runs and their verdicts.
- ``model_commands``: :class:`ModelCommands` — the model actions that need dialogs.
- ``tool_controller``: :class:`ToolController` — the canvas tools, class, brush radius, paint lock.
- ``undo_adapter``: :class:`UndoAdapter` — Edit › Undo/Redo over the core history.

Panels call their methods; they announce changes as signals, and tell the user
things through the window's :class:`~segstudio.gui.notifier.Notifier`. The
package imports none of them itself (no import cycles through it).
"""
