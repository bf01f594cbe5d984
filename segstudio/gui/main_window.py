"""The main window: the composition root that wires panels, actions, the controller and workers.

It owns no logic of its own beyond wiring: opening and saving live in
:class:`~segstudio.gui.controllers.project_controller.ProjectController`, tools in
:class:`~segstudio.gui.controllers.tool_controller.ToolController`, long work in
:class:`~segstudio.gui.workers.WorkerPool`, panels in :mod:`segstudio.gui.panels`.
See docs/GUI_ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from segstudio import __version__
from segstudio.core.classes import ClassTable
from segstudio.core.image_io import IMAGE_SUFFIXES, list_images
from segstudio.core.project import Project
from segstudio.gui.actions import build_menus, create_actions, shortcut_table
from segstudio.gui.canvas.canvas import Canvas
from segstudio.gui.controllers.model_commands import ModelCommands
from segstudio.gui.controllers.project_controller import ProjectController
from segstudio.gui.controllers.segment_controller import SegmentController
from segstudio.gui.controllers.tool_controller import LOCK_CLASS, LOCK_NONE, LOCK_UNLABELLED, TOOL_NAMES, ToolController
from segstudio.gui.controllers.training_controller import TrainingController
from segstudio.gui.controllers.undo_adapter import UndoAdapter
from segstudio.gui.focus import return_focus_to
from segstudio.gui.notifier import Notifier
from segstudio.gui.panels.classes import ClassPanel
from segstudio.gui.panels.files import FilePanel
from segstudio.gui.panels.help import ShortcutsDialog
from segstudio.gui.panels.labels_dialog import LabelsDialog
from segstudio.gui.panels.model import ModelPanel
from segstudio.gui.panels.status_bar import StatusFields, describe_pixel
from segstudio.gui.panels.tool_options import ToolOptions
from segstudio.gui.panels.training import TrainingPanel
from segstudio.gui.panels.welcome import WelcomePage, sample_classes, shipped_models
from segstudio.gui.settings import AppSettings, app_data_dir, models_dir, resources_dir
from segstudio.gui.theme import apply_theme, system_is_dark
from segstudio.gui.workers import WorkerPool
from segstudio.workspace.document import ImageDocument, class_pixel_counts
from segstudio.workspace.model_choice import ModelChoice
from segstudio.workspace.opening import EmptyFolder

SAMPLE_PROJECT = "sample-project"


def project_title(project: Project) -> str:
    """The project's part of the title bar: its folder, and where it is kept when that is elsewhere (a
    read-only image folder's project lives in the user's data folder)."""
    if project.image_folder is None:
        return project.root.name
    return f"{project.image_folder.name} (read-only; project kept in {project.root})"


RIGHT_DOCK_WIDTH = 260
"""The starting width of the right-hand docks (classes, model, fine-tune); the class panel needs about this."""


def scrolled(panel: QWidget) -> QScrollArea:
    """``panel`` in a frameless scroll area: a panel taller than its dock scrolls rather than squeezing its
    controls on top of each other or forcing the dock area's size."""
    scroll = QScrollArea()
    scroll.setWidget(panel)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    return scroll


class MainWindow(QMainWindow):
    """segstudio's window. ``open_paths`` opens what the command line or a drop names."""

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.workers = WorkerPool(self)
        self.notifier = Notifier(self)
        self.controller = ProjectController(self.workers, self.notifier, self)
        self.segment = SegmentController(self.controller, self.notifier, self.settings, self)
        self.training = TrainingController(self.segment, self.notifier, self)
        self.all_actions = create_actions(self)
        self.menus = build_menus(self.menuBar(), self.all_actions)
        self.canvas = Canvas()
        self.tools = ToolController(self.canvas, self)
        self.undo = UndoAdapter(self.controller, self.all_actions.edit.undo, self.all_actions.edit.redo, self)
        a = self.all_actions
        self.welcome = WelcomePage(a.file.open_folder, a.file.open_images, a.file.open_project,
                                   a.file.open_samples, models_dir())
        self.message_page = QLabel()
        self.message_page.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_page.setWordWrap(True)
        self.stack = QStackedWidget()
        for page in (self.welcome, self.canvas, self.message_page):
            self.stack.addWidget(page)
        self.setCentralWidget(self.stack)
        self.files = FilePanel(self.workers)
        self.class_panel = ClassPanel()
        self.class_panel.add_toggle(a.view.solo)
        self.class_panel.add_toggle(a.view.mask_view)
        self.docks: dict[str, QDockWidget] = {}
        self.add_panel("files", "Images", self.files, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_panel("classes", "Classes", self.class_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        m = a.model
        self.model_panel = ModelPanel(self.segment, models_dir(), m.open_model, m.segment, m.segment_all, m.cancel)
        self.add_panel("model", "Model", scrolled(self.model_panel), Qt.DockWidgetArea.RightDockWidgetArea)
        tr = a.training
        self.training_panel = TrainingPanel(self.training, tr.fine_tune, tr.stop, tr.evaluate)
        # a tab beside the model panel (the right side has room for two docks); raised when a run starts
        self.add_panel("training", "Fine-tune", scrolled(self.training_panel), Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["model"], self.docks["training"])
        self.docks["model"].raise_()
        self.model_commands = ModelCommands(self, self.segment, self.notifier, a, self.settings, models_dir())
        self.tool_options = ToolOptions()
        self._build_toolbars()
        self.status = StatusFields(self.statusBar())
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(200)
        self._count_timer.timeout.connect(self._recount)
        self._last_box: QMessageBox | None = None
        self._shown_path: str | None = None
        self.labels_dialogs: dict[str, LabelsDialog] = {}
        self._cursor: tuple[float, float] | None = None  # the image pixel under the pointer
        self._follow_class: tuple[str, int] | None = None  # a class being moved: (name, new place)
        self._docks_unsized: bool = True  # no saved layout: the docks are sized when a project first shows them
        self.spin_focus = return_focus_to(self.canvas, [self.tool_options, self.training_panel, self.model_panel],
                                          self)
        self._wire_controller()
        self._wire_tools()
        self._wire_actions()
        self._restore_settings()
        self.setAcceptDrops(True)
        # drops anywhere, the canvas included, reach the window (QGraphicsView would take and ignore them)
        self.canvas.setAcceptDrops(False)
        self.canvas.viewport().setAcceptDrops(False)
        self._show_project(None)

    # ------------------------------------------------------------------ layout
    def add_panel(self, name: str, title: str, widget: QWidget,
                  area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Dock ``widget`` (the model and training panels go on the right, under the classes)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[name] = dock
        self.menus["panels"].addAction(dock.toggleViewAction())
        return dock

    def _build_toolbars(self) -> None:
        a = self.all_actions
        tools = QToolBar("Tools", self)
        tools.setObjectName("toolbar-tools")
        tools.addActions(list(a.tools.tools))
        tools.addSeparator()
        tools.addWidget(self.tool_options)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools)
        self.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        view = QToolBar("View", self)
        view.setObjectName("toolbar-view")
        view.addActions([a.view.fit, a.view.one_to_one, a.view.overlay, a.view.outline, a.view.uncertainty,
                         a.edit.accept_prediction])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, view)
        self.toolbars = [tools, view]
        for bar in self.toolbars:
            self.menus["panels"].addAction(bar.toggleViewAction())

    # ------------------------------------------------------------------ wiring
    def _wire_controller(self) -> None:
        c = self.controller
        c.projectChanged.connect(self._show_project)
        c.documentChanged.connect(self._show_document)
        c.predictionChanged.connect(self._prediction_changed)
        c.classesChanged.connect(self._classes_changed)
        c.labelEdited.connect(self._count_timer.start)
        c.labelEdited.connect(self._reread_pixel)
        c.dirtyChanged.connect(self._dirty_changed)
        c.statusChanged.connect(self._status_changed)
        c.loadingStarted.connect(self._loading)
        c.loadFailed.connect(self._load_failed)
        self.notifier.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.notifier.errorOccurred.connect(self.show_message)
        c.emptyFolder.connect(self._empty_folder)
        c.imagesChanged.connect(self.files.set_project)
        c.busyChanged.connect(self._busy)
        self.files.imageActivated.connect(c.open_entry)
        self.segment.domainWarning.connect(lambda text: self.show_message(
            "These images may be new to the model", text, QMessageBox.Icon.Information))
        self.welcome.recentChosen.connect(self.open_recent)
        cp = self.class_panel
        cp.classSelected.connect(self.tools.set_class)
        cp.hiddenChanged.connect(self.canvas.set_hidden)
        changes = c.class_changes
        cp.addRequested.connect(changes.add)
        cp.renameRequested.connect(changes.rename)
        cp.recolourRequested.connect(changes.recolour)
        cp.deleteRequested.connect(changes.delete)
        cp.moveRequested.connect(self._move_class)
        cp.importRequested.connect(changes.import_table)
        self.canvas.cursorMoved.connect(self._cursor_moved)
        self.canvas.zoomChanged.connect(self.status.show_zoom)

    def _wire_tools(self) -> None:
        t, a = self.tools, self.all_actions
        t.edited.connect(lambda _what: self.controller.note_edit())
        t.toolChanged.connect(lambda name: a.tools.tool(name).setChecked(True))
        t.classChanged.connect(self._class_changed)
        t.radiusChanged.connect(self.tool_options.set_radius)
        t.lockChanged.connect(self._lock_changed)
        self.tool_options.radiusEdited.connect(t.set_radius)
        self.tool_options.lockChosen.connect(t.set_lock)
        self.tool_options.opacityEdited.connect(self._set_opacity)

    def _wire_actions(self) -> None:
        a, c, t, cv = self.all_actions, self.controller, self.tools, self.canvas
        f = a.file
        f.open_folder.triggered.connect(self.ask_open_folder)
        f.open_images.triggered.connect(self.ask_open_images)
        f.open_project.triggered.connect(self.ask_open_project)
        f.open_samples.triggered.connect(self.open_samples)
        f.rescan.triggered.connect(c.rescan)
        f.import_labels.triggered.connect(lambda: self.show_labels_dialog("import"))
        f.export_labels.triggered.connect(lambda: self.show_labels_dialog("export"))
        f.save.triggered.connect(c.save_all_async)
        f.close_project.triggered.connect(c.close_project)
        f.quit.triggered.connect(self.close)
        e = a.edit
        e.accept_prediction.triggered.connect(c.accept_prediction)
        e.mark_reviewed.triggered.connect(c.toggle_reviewed)
        e.lock_none.triggered.connect(lambda: t.set_lock(LOCK_NONE))
        e.lock_unlabelled.triggered.connect(lambda: t.set_lock(LOCK_UNLABELLED))
        e.lock_class.triggered.connect(lambda: t.set_lock(LOCK_CLASS))
        for act, name in zip(a.tools.tools, TOOL_NAMES):
            act.triggered.connect(lambda _=False, n=name: t.set_tool(n))
        a.tools.bigger.triggered.connect(t.grow)
        a.tools.smaller.triggered.connect(t.shrink)
        v = a.view
        v.zoom_in.triggered.connect(cv.zoom_in)
        v.zoom_out.triggered.connect(cv.zoom_out)
        v.fit.triggered.connect(cv.fit_to_window)
        v.one_to_one.triggered.connect(cv.zoom_1to1)
        v.overlay.toggled.connect(cv.set_overlay_visible)
        v.outline.toggled.connect(self._set_outline)
        v.uncertainty.toggled.connect(cv.show_uncertainty)
        v.mask_view.toggled.connect(lambda on: cv.set_mask_view(t.current_class if on else None))
        v.solo.toggled.connect(lambda on: cv.set_solo(t.current_class if on else None))
        v.opacity_up.triggered.connect(lambda: self._set_opacity(cv.opacity + 0.1))
        v.opacity_down.triggered.connect(lambda: self._set_opacity(cv.opacity - 0.1))
        for act, theme in zip(v.themes, ("system", "light", "dark")):
            act.triggered.connect(lambda _=False, name=theme: self.set_theme(name))
        i = a.image
        i.next.triggered.connect(lambda: self._step_image(1))
        i.previous.triggered.connect(lambda: self._step_image(-1))
        i.next_unlabelled.triggered.connect(self._next_unlabelled)
        k = a.classes
        k.next.triggered.connect(lambda: t.set_class((t.current_class + 1) % max(1, t.num_classes)))
        k.previous.triggered.connect(lambda: t.set_class((t.current_class - 1) % max(1, t.num_classes)))
        for n, act in enumerate(k.select):
            act.triggered.connect(lambda _=False, n=n: t.set_class(n))
        a.training.fine_tune.triggered.connect(self.docks["training"].raise_)
        self.training.concluded.connect(lambda _r: self.model_panel.refresh())  # the model list shows versions
        a.training.evaluate.triggered.connect(self.docks["training"].raise_)
        a.help.shortcuts.triggered.connect(self.show_shortcuts)
        a.help.about.triggered.connect(lambda: self.show_message(
            "About segstudio", f"segstudio {__version__}\nSemantic segmentation with a human in the loop.",
            QMessageBox.Icon.Information))
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _s: self._system_theme_changed())

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open a folder, project or images (command line, drop)."""
        if paths:
            self.controller.open_paths([Path(p) for p in paths])

    def open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.settings.remove_recent(path)
            self._update_recent()
            self.show_message("Cannot open", f"{path} no longer exists; it was removed from the recent list.")
            return
        self.controller.open_path(path)

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.settings.last_dir())
        if folder:
            self.settings.set_last_dir(folder)
            self.controller.open_path(folder)

    def ask_open_images(self) -> None:
        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_dir(),
                                                f"Images ({pattern});;All files (*)")
        if files:
            self.settings.set_last_dir(str(Path(files[0]).parent))
            self.controller.open_images(files)

    def ask_open_project(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Open a project", self.settings.last_dir(),
                                              "segstudio project (segstudio.json)")
        if file:
            self.settings.set_last_dir(str(Path(file).parent.parent))
            self.controller.open_path(file)

    def open_samples(self) -> None:
        """Open the shipped sample images as a project in segstudio's own data folder, with the shipped
        default model chosen when ``models/`` has one (else say plainly that there is none)."""
        samples = list_images(resources_dir() / "samples")
        if not samples:
            self.show_message("No sample images", f"{resources_dir() / 'samples'} holds no images.")
            return
        root = app_data_dir() / SAMPLE_PROJECT
        models = shipped_models(models_dir())
        if models:
            self.settings.set_model_choice(root, ModelChoice.file(models[0]).to_json())
        else:
            self.show_message("No trained model installed", "No trained model is installed yet "
                              f"({models_dir()} is empty), so the sample images open without a segmentation. "
                              "Choose a model file in the Model panel (Model › Open Model File…), or label some "
                              "images and train a network from the zoo on them.", QMessageBox.Icon.Information)
        self.controller.create_project(root, samples, sample_classes(models[0] if models else None))

    def _empty_folder(self, empty: EmptyFolder) -> None:
        """A folder without images was opened: say how to add some (nothing was written there)."""
        if self.controller.project is None:
            self.message_page.setText(empty.hint())
            self.stack.setCurrentWidget(self.message_page)
        else:
            self.show_message("No images", empty.hint(), QMessageBox.Icon.Information)

    # ------------------------------------------------------------------ controller → view
    def _show_project(self, project: Project | None) -> None:
        self.files.set_project(project)
        # the welcome page stands alone; panels and tool bars come with a project
        for w in [*self.docks.values(), *self.toolbars]:
            w.setVisible(project is not None)
        if project is not None and self._docks_unsized:  # their first showing, with no saved layout
            self._docks_unsized = False
            # narrow, so the canvas keeps its room; the Model and Fine-tune panels fit it beside a vertical scroll
            # bar (tests/gui/test_layout.py)
            self.resizeDocks([self.docks["classes"]], [RIGHT_DOCK_WIDTH], Qt.Orientation.Horizontal)
            self.resizeDocks([self.docks["classes"], self.docks["model"]], [330, 430], Qt.Orientation.Vertical)
        if project is None:
            self.stack.setCurrentWidget(self.welcome)
            self._show_document(None)
        else:
            self.stack.setCurrentWidget(self.canvas)
            self.settings.add_recent(project.root)
        self._update_recent()
        self._update_enabled()

    def _show_document(self, doc: ImageDocument | None) -> None:
        if doc is None:
            self.canvas.clear_document()
            self.tools.set_document(None)
            self._shown_path = None
        else:
            # the same image shown again (after classes were merged): keep the user's zoom and position
            self.canvas.show_document(doc.pyramid, doc.session, self.controller.classes, doc.uncertainty,
                                      fit=self._shown_path != doc.path)
            self.tools.set_document(doc)
            self.files.select(doc.path)
            self.stack.setCurrentWidget(self.canvas)
            self.canvas.setFocus()
            self.all_actions.edit.mark_reviewed.setChecked(doc.entry.status == "reviewed")
            self._shown_path = doc.path
        self.status.set_busy(False)
        self._prediction_changed(doc)
        self._recount()
        self._update_title()
        self._update_enabled()

    def _prediction_changed(self, doc: ImageDocument | None) -> None:
        if doc is not self.controller.current:
            return
        has_heat = doc is not None and doc.uncertainty is not None
        if doc is not None:
            self.canvas.refresh_prediction()
            self.canvas.set_uncertainty(doc.uncertainty)
        self.all_actions.view.uncertainty.setEnabled(has_heat)
        self.canvas.show_uncertainty(has_heat and self.all_actions.view.uncertainty.isChecked())
        self._update_enabled()

    def _move_class(self, index: int, to: int) -> None:
        self._follow_class = (self.controller.classes[index].name, to)
        self.controller.class_changes.move(index, to)

    def _classes_changed(self, classes: ClassTable) -> None:
        follow, self._follow_class = self._follow_class, None
        if follow is not None and follow[1] < len(classes) and classes[follow[1]].name == follow[0]:
            self.tools.set_class(follow[1])  # the moved class stays the one painted with
        self.canvas.set_classes(classes)
        self.class_panel.set_classes(classes)
        self.tools.set_num_classes(len(classes))
        self.tool_options.set_lock(classes, self.tools.lock_mode, self.tools.lock_class)
        for n, act in enumerate(self.all_actions.classes.select):
            act.setText(f"Class {n + 1}: {classes[n].name}" if n < len(classes) else f"Class {n + 1}")
            act.setEnabled(n < len(classes))
        self.class_panel.set_current(self.tools.current_class)
        self._recount()

    def _recount(self) -> None:
        doc = self.controller.current
        if doc is None:
            self.class_panel.set_counts(None, 0)
            return
        label = doc.session.label
        self.class_panel.set_counts(class_pixel_counts(label, len(self.controller.classes)), label.size)

    def _status_changed(self, path: str) -> None:
        self.files.refresh_status(path)
        doc = self.controller.current
        if doc is not None and doc.path == path:
            self.all_actions.edit.mark_reviewed.setChecked(doc.entry.status == "reviewed")
        self._dirty_changed(self.controller.any_dirty())

    def _dirty_changed(self, dirty: bool) -> None:
        self.setWindowModified(dirty)
        doc = self.controller.current
        self.status.show_saved(dirty, doc.save_error if doc is not None else None)

    def _loading(self, path: str) -> None:
        self.status.set_busy(True)
        self.files.select(path)

    def _load_failed(self, path: str, message: str) -> None:
        self.status.set_busy(False)
        self.files.mark_broken(path, message)
        self.message_page.setText(f"Cannot open {path}\n\n{message}")
        self.stack.setCurrentWidget(self.message_page)

    def _busy(self, busy: bool) -> None:
        self.stack.setEnabled(not busy)
        for dock in self.docks.values():
            dock.setEnabled(not busy)
        self.status.set_busy(busy)

    def _cursor_moved(self, x: float, y: float) -> None:
        self._cursor = (x, y)
        self.status.show_pixel(*describe_pixel(self.controller.current, self.controller.classes, x, y))

    def _reread_pixel(self) -> None:
        """Read the pixel under the pointer again (after an edit: an accepted prediction is no longer
        "(predicted)")."""
        if self._cursor is not None:
            self._cursor_moved(*self._cursor)

    def _update_title(self) -> None:
        # "[*]" is where Qt shows the unsaved-changes mark (setWindowModified)
        project, doc = self.controller.project, self.controller.current
        parts = [doc.entry.name] if doc is not None else []
        if project is not None:
            parts.append(project_title(project))
        self.setWindowTitle(" — ".join([*parts, "segstudio"]) + "[*]")
        self.setWindowModified(self.controller.any_dirty())

    def _update_recent(self) -> None:
        recent = self.settings.recent()
        self.welcome.set_recent(recent)
        menu = self.menus["recent"]
        menu.clear()
        for path in recent:
            act = menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_recent(p))
        menu.setEnabled(bool(recent))

    def _update_enabled(self) -> None:
        a, project, doc = self.all_actions, self.controller.project, self.controller.current
        for act in (a.file.rescan, a.file.save, a.file.close_project, a.image.next, a.image.previous,
                    a.image.next_unlabelled, a.file.export_labels):
            act.setEnabled(project is not None)
        a.file.import_labels.setEnabled(project is not None and not project.read_only)
        editable = doc is not None and doc.editable
        a.edit.accept_prediction.setEnabled(editable and doc is not None and doc.session.prediction is not None)
        a.edit.mark_reviewed.setEnabled(editable)

    # ------------------------------------------------------------------ tools → view
    def _class_changed(self, index: int) -> None:
        self.class_panel.set_current(index)
        if self.all_actions.view.solo.isChecked():
            self.canvas.set_solo(index)
        if self.all_actions.view.mask_view.isChecked():
            self.canvas.set_mask_view(index)

    def _lock_changed(self, mode: str, index: int) -> None:
        e = self.all_actions.edit
        {LOCK_NONE: e.lock_none, LOCK_UNLABELLED: e.lock_unlabelled, LOCK_CLASS: e.lock_class}[mode].setChecked(True)
        self.tool_options.set_lock(self.controller.classes, mode, index)

    def _set_opacity(self, value: float) -> None:
        self.canvas.set_opacity(value)
        self.tool_options.set_opacity(self.canvas.opacity)
        self.settings.set_opacity(self.canvas.opacity)

    def _set_outline(self, on: bool) -> None:
        self.canvas.set_outline(on)
        self.settings.set_outline(on)

    def _step_image(self, step: int) -> None:
        target = self.files.neighbour(self.controller.requested_path, step)
        if target is not None:
            self.controller.open_entry(target)

    def _next_unlabelled(self) -> None:
        target = self.files.next_with_status(self.controller.requested_path, "unlabelled")
        if target is None:
            self.statusBar().showMessage("No unlabelled image left", 5000)
        else:
            self.controller.open_entry(target)

    # ------------------------------------------------------------------ dialogs, theme, settings
    def show_message(self, title: str, text: str,
                     icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> QMessageBox:
        """A non-blocking message box (the window keeps working; tests can read and close it)."""
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
        self._last_box = box
        return box

    def show_labels_dialog(self, mode: str) -> LabelsDialog:
        """File › Import Labels… ("import") or Export Labels… ("export"): one non-modal dialog each."""
        dialog = self.labels_dialogs.get(mode)
        if dialog is None:
            dialog = self.labels_dialogs[mode] = LabelsDialog(mode, self.controller, self)
        dialog.update_preview()
        dialog.show()
        dialog.raise_()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(shortcut_table(self.all_actions), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.open()
        return dialog

    def set_theme(self, name: str) -> None:
        self.settings.set_theme(name)
        for act in self.all_actions.view.themes:
            act.setChecked(act.data() == name)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, name)

    def _system_theme_changed(self) -> None:
        if self.settings.theme() == "system":
            self.set_theme("system")
            self.statusBar().showMessage("Following the system's " + ("dark" if system_is_dark() else "light")
                                         + " theme", 4000)

    def _restore_settings(self) -> None:
        s = self.settings
        self.resize(1400, 880)
        geometry, state = s.geometry(), s.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._docks_unsized = state is None
        self.tools.set_radius(s.brush_radius())
        self._set_opacity(s.opacity())
        self.all_actions.view.outline.setChecked(s.outline())
        for act in self.all_actions.view.themes:
            act.setChecked(act.data() == s.theme())
        self.tools.radiusChanged.connect(s.set_brush_radius)

    # ------------------------------------------------------------------ Qt events
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and all(u.isLocalFile() for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save every label before closing; if that fails the user chooses: retry, close anyway, or stay."""
        while True:
            errors = self.controller.flush()
            if not errors:
                break
            choice = self.ask_after_failed_save(errors)
            if choice == QMessageBox.StandardButton.Cancel:
                event.ignore()
                return
            if choice == QMessageBox.StandardButton.Discard:
                self.controller.discard_unsaved()
                break
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.training.shutdown()  # the training process ends with its window
        self.workers.shutdown()
        super().closeEvent(event)

    def ask_after_failed_save(self, errors: list[str]) -> QMessageBox.StandardButton:
        """Blocking question after a failed save on close (tests replace this method)."""
        buttons = (QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        return QMessageBox.critical(self, "Could not save", "These labels could not be saved:\n"
                                    + "\n".join(errors) + "\n\nRetry, close without them, or cancel?", buttons)
