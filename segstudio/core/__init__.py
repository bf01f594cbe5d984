"""Qt-free, torch-free core: images, projects, classes, edits, formats, metrics."""
