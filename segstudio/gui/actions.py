"""Every action of the window, grouped in typed containers (labelme's ``_Actions`` idea).

:func:`create_actions` makes them (text, shortcut, checkable state) and
:func:`build_menus` lays them out; the main window connects them. The Help →
Keyboard shortcuts list is generated from these containers, so it cannot
miss one. A new group (the model and training panels' actions) is one more
dataclass field in :class:`Actions` and one more menu in :func:`build_menus`
(the model group is; the fine-tuning group's actions go in the Model menu).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

from segstudio.gui.controllers.tool_controller import TOOL_NAMES


def _action(parent: QWidget, text: str, shortcut: str | QKeySequence.StandardKey | list[str] = "",
            tip: str = "", checkable: bool = False, checked: bool = False) -> QAction:
    a = QAction(text, parent)
    if isinstance(shortcut, list):
        a.setShortcuts([QKeySequence(s) for s in shortcut])
    elif isinstance(shortcut, QKeySequence.StandardKey):
        a.setShortcuts(shortcut)
    elif shortcut:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setToolTip(tip)
        a.setStatusTip(tip)
    if checkable:
        a.setCheckable(True)
        a.setChecked(checked)
    parent.addAction(a)  # window-wide shortcuts, also while a menu is hidden
    return a


class _Group:
    def __iter__(self) -> Iterator[QAction]:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, QAction):
                yield value
            elif isinstance(value, tuple):
                yield from value


@dataclass(frozen=True)
class FileActions(_Group):
    open_folder: QAction
    open_images: QAction
    open_project: QAction
    open_samples: QAction
    batch: QAction
    import_labels: QAction
    export_labels: QAction
    rescan: QAction
    save: QAction
    close_project: QAction
    quit: QAction


@dataclass(frozen=True)
class EditActions(_Group):
    undo: QAction
    redo: QAction
    accept_prediction: QAction
    mark_reviewed: QAction
    lock_none: QAction
    lock_unlabelled: QAction
    lock_class: QAction


@dataclass(frozen=True)
class ToolActions(_Group):
    tools: tuple[QAction, ...]  # in TOOL_NAMES order, exclusive
    bigger: QAction
    smaller: QAction

    def tool(self, name: str) -> QAction:
        return self.tools[TOOL_NAMES.index(name)]


@dataclass(frozen=True)
class ViewActions(_Group):
    zoom_in: QAction
    zoom_out: QAction
    fit: QAction
    one_to_one: QAction
    overlay: QAction
    outline: QAction
    uncertainty: QAction
    mask_view: QAction
    solo: QAction
    opacity_up: QAction
    opacity_down: QAction
    themes: tuple[QAction, ...]  # system, light, dark


@dataclass(frozen=True)
class ImageActions(_Group):
    next: QAction
    previous: QAction
    next_unlabelled: QAction
    next_uncertain: QAction


@dataclass(frozen=True)
class ModelActions(_Group):
    open_model: QAction
    segment: QAction
    segment_all: QAction
    cancel: QAction


@dataclass(frozen=True)
class TrainingActions(_Group):
    fine_tune: QAction
    stop: QAction
    evaluate: QAction


@dataclass(frozen=True)
class ClassActions(_Group):
    next: QAction
    previous: QAction
    select: tuple[QAction, ...]  # keys 1..9, 0 → classes 0..9


@dataclass(frozen=True)
class HelpActions(_Group):
    shortcuts: QAction
    about: QAction


@dataclass(frozen=True)
class Actions:
    """All actions, by menu."""

    file: FileActions
    edit: EditActions
    tools: ToolActions
    view: ViewActions
    image: ImageActions
    model: ModelActions
    training: TrainingActions
    classes: ClassActions
    help: HelpActions

    def groups(self) -> list[tuple[str, _Group]]:
        return [(f.name.capitalize(), getattr(self, f.name)) for f in fields(self)]


_TOOL_TEXT = {
    "brush": ("&Brush", "B", "Paint the current class (size: [ and ], or Ctrl+wheel)"),
    "eraser": ("&Eraser", "E", "Erase to 'not labelled'"),
    "fill": ("&Fill", "F", "Flood-fill the region under the click"),
    "polygon": ("&Polygon", "P", "Click corners; double-click or Enter fills"),
    "lasso": ("&Lasso", "L", "Drag an outline; releasing fills it"),
    "eyedropper": ("E&yedropper", "I", "Pick the class under the click"),
    "accept": ("&Accept prediction in lasso", "A", "Drag an outline; the prediction inside becomes label"),
}


def create_actions(parent: QWidget) -> Actions:
    """Create every action as a child of ``parent`` (normally the main window)."""
    a = _action
    file = FileActions(
        open_folder=a(parent, "Open &Folder…", "Ctrl+O", "Open a folder of images or a project folder"),
        open_images=a(parent, "Open &Images…", "Ctrl+Shift+O", "Open some image files"),
        open_project=a(parent, "Open &Project…", "Ctrl+Alt+O", "Open a segstudio.json"),
        open_samples=a(parent, "Open &Sample Images", "Ctrl+Alt+S", "Open the demo images shipped with segstudio"),
        batch=a(parent, "&Batch Segment Folder…", "Ctrl+B",
                "Segment a folder of images with a model and write the results to another folder"),
        import_labels=a(parent, "&Import Labels…", "Ctrl+Shift+I",
                        "Read labels made elsewhere (index/VOC PNG, binary masks, COCO, labelme, YOLO)"),
        export_labels=a(parent, "&Export Labels…", "Ctrl+Shift+E",
                        "Write the labels as index/VOC PNGs, binary masks, COCO, labelme or YOLO"),
        rescan=a(parent, "&Rescan Folder", "F5", "Add images that appeared in the project folder"),
        save=a(parent, "&Save", QKeySequence.StandardKey.Save, "Save now (segstudio also saves by itself)"),
        close_project=a(parent, "&Close Project", "Ctrl+W"),
        quit=a(parent, "&Quit", "Ctrl+Q"),
    )
    edit = EditActions(
        undo=a(parent, "&Undo", QKeySequence.StandardKey.Undo),
        redo=a(parent, "&Redo", ["Ctrl+Shift+Z", "Ctrl+Y"]),
        accept_prediction=a(parent, "Accept &Prediction", "Shift+A",
                            "Take the prediction wherever nothing is labelled yet"),
        mark_reviewed=a(parent, "Mark &Reviewed", "Ctrl+R", "Mark the image reviewed (or back to corrected)",
                        checkable=True),
        lock_none=a(parent, "Paint &Anywhere", "Alt+0", checkable=True, checked=True),
        lock_unlabelled=a(parent, "Paint Only &Unlabelled", "Alt+U", "Tools change only unlabelled pixels",
                          checkable=True),
        lock_class=a(parent, "Paint Only Over &Class…", "Alt+K",
                     "Tools change only pixels of the class chosen in the lock box", checkable=True),
    )
    locks = QActionGroup(parent)
    for act in (edit.lock_none, edit.lock_unlabelled, edit.lock_class):
        locks.addAction(act)
    tool_group = QActionGroup(parent)
    tool_actions = []
    for name in TOOL_NAMES:
        text, key, tip = _TOOL_TEXT[name]
        act = a(parent, text, key, tip, checkable=True, checked=name == "brush")
        act.setData(name)
        tool_group.addAction(act)
        tool_actions.append(act)
    tools = ToolActions(
        tools=tuple(tool_actions),
        bigger=a(parent, "B&igger Brush", "]"),
        smaller=a(parent, "S&maller Brush", "["),
    )
    themes = tuple(a(parent, text, checkable=True) for text in ("&System Theme", "&Light", "&Dark"))
    theme_group = QActionGroup(parent)
    for act, name in zip(themes, ("system", "light", "dark")):
        act.setData(name)
        theme_group.addAction(act)
    view = ViewActions(
        zoom_in=a(parent, "Zoom &In", QKeySequence.StandardKey.ZoomIn),
        zoom_out=a(parent, "Zoom &Out", QKeySequence.StandardKey.ZoomOut),
        fit=a(parent, "&Fit to Window", "Ctrl+0"),
        one_to_one=a(parent, "&Actual Pixels (1:1)", "Ctrl+1"),
        overlay=a(parent, "Show &Labels", "V", "Show or hide the label overlay", checkable=True, checked=True),
        outline=a(parent, "Ou&tlines Only", "O", "Draw class borders instead of filled areas", checkable=True),
        uncertainty=a(parent, "&Uncertainty Heat Map", "H", "Where the model is unsure (after segmenting)",
                      checkable=True),
        mask_view=a(parent, "&Mask View", "M", "The current class as a black/white mask", checkable=True),
        solo=a(parent, "&Solo Class", "S", "Show only the current class", checkable=True),
        opacity_up=a(parent, "More O&paque", "Ctrl+]"),
        opacity_down=a(parent, "More T&ransparent", "Ctrl+["),
        themes=themes,
    )
    image = ImageActions(
        next=a(parent, "&Next Image", ["PgDown", "Ctrl+Right"]),
        previous=a(parent, "&Previous Image", ["PgUp", "Ctrl+Left"]),
        next_unlabelled=a(parent, "Next &Unlabelled Image", "N"),
        next_uncertain=a(parent, "Next Most Un&certain Image", "U",
                         "The unlabelled image the model is least sure about (after Segment All Unlabelled)"),
    )
    model = ModelActions(
        open_model=a(parent, "&Open Model File…", "Ctrl+Shift+M", "Choose a .safetensors or .onnx model file"),
        segment=a(parent, "&Segment", "Ctrl+Return", "Segment the image on screen with the model"),
        segment_all=a(parent, "Segment &All Unlabelled", "Ctrl+Shift+Return",
                      "Segment every image without a label (or whose prediction came from another model)"),
        cancel=a(parent, "&Cancel Segmentation", "Ctrl+.", "Stop segmenting; images already done are kept"),
    )
    training = TrainingActions(
        fine_tune=a(parent, "&Fine-tune on Corrections", "Ctrl+T",
                    "Train the model on the corrected images in the background; the new version becomes active"),
        stop=a(parent, "S&top Fine-tuning", "Ctrl+Shift+T", "Stop the run; the previous model stays active"),
        evaluate=a(parent, "&How Good Is It?", "Ctrl+G",
                   "Score the active model against the corrected images (IoU per image and class)"),
    )
    select = tuple(a(parent, f"Class {i + 1}", str((i + 1) % 10)) for i in range(10))
    classes = ClassActions(
        next=a(parent, "&Next Class", "."),
        previous=a(parent, "&Previous Class", ","),
        select=select,
    )
    help_ = HelpActions(
        shortcuts=a(parent, "&Keyboard Shortcuts", QKeySequence.StandardKey.HelpContents),
        about=a(parent, "&About segstudio"),
    )
    return Actions(file, edit, tools, view, image, model, training, classes, help_)


def build_menus(bar: QMenuBar, actions: Actions) -> dict[str, QMenu]:
    """Fill the menu bar; returns the menus by name ("recent" is the Open Recent sub-menu, filled later)."""
    menus: dict[str, QMenu] = {}
    f = actions.file
    m = menus["file"] = bar.addMenu("&File")
    m.addActions([f.open_folder, f.open_images, f.open_project])
    menus["recent"] = m.addMenu("Open &Recent")
    m.addAction(f.open_samples)
    m.addSeparator()
    m.addAction(f.batch)
    m.addActions([f.import_labels, f.export_labels])
    m.addSeparator()
    m.addActions([f.rescan, f.save, f.close_project])
    m.addSeparator()
    m.addAction(f.quit)
    e = actions.edit
    m = menus["edit"] = bar.addMenu("&Edit")
    m.addActions([e.undo, e.redo])
    m.addSeparator()
    m.addActions([e.accept_prediction, e.mark_reviewed])
    m.addSeparator()
    m.addActions([e.lock_none, e.lock_unlabelled, e.lock_class])
    t = actions.tools
    m = menus["tools"] = bar.addMenu("&Tools")
    m.addActions(list(t.tools))
    m.addSeparator()
    m.addActions([t.bigger, t.smaller])
    v = actions.view
    m = menus["view"] = bar.addMenu("&View")
    m.addActions([v.zoom_in, v.zoom_out, v.fit, v.one_to_one])
    m.addSeparator()
    m.addActions([v.overlay, v.outline, v.opacity_up, v.opacity_down, v.solo, v.mask_view, v.uncertainty])
    m.addSeparator()
    menus["panels"] = m.addMenu("&Panels")
    theme = m.addMenu("T&heme")
    theme.addActions(list(v.themes))
    i = actions.image
    m = menus["image"] = bar.addMenu("&Image")
    m.addActions([i.next, i.previous, i.next_unlabelled, i.next_uncertain])
    md = actions.model
    m = menus["model"] = bar.addMenu("&Model")
    m.addAction(md.open_model)
    m.addSeparator()
    m.addActions([md.segment, md.segment_all, md.cancel])
    m.addSeparator()
    tr = actions.training
    m.addActions([tr.fine_tune, tr.stop, tr.evaluate])
    c = actions.classes
    m = menus["classes"] = bar.addMenu("&Classes")
    m.addActions([c.next, c.previous])
    m.addSeparator()
    m.addActions(list(c.select))
    h = actions.help
    m = menus["help"] = bar.addMenu("&Help")
    m.addActions([h.shortcuts, h.about])
    return menus


def shortcut_table(actions: Actions) -> list[tuple[str, str, str]]:
    """(group, action text, shortcuts) for every action that has a shortcut, for the Help list."""
    rows = []
    for group_name, group in actions.groups():
        for act in group:
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts())
            if keys:
                rows.append((group_name, act.text().replace("&", "").rstrip("…"), keys))
    return rows
