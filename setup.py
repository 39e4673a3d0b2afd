"""Build hook: the wheel carries the repository's top-level data inside the package.

`templates/`, `examples/` and `digest.example.toml` stay at the top of the repository (the
layout operators edit and copy); `build_py` copies them to `digest/templates/`,
`digest/examples/` and `digest/digest.example.toml` in the build folder, so an installed
wheel finds them next to its code. The package keeps the repository's relative layout, so
the example config's `path = "examples/pages"` resolves in both places.

An editable install builds nothing: `digest.config.bundled` falls back to the top-level
folders of the checkout, so edits there take effect at once. The metadata lives in
pyproject.toml; this file only registers the command.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE = "digest"
BUNDLED = ("templates", "examples", "digest.example.toml")


def bundled_files() -> list[tuple[str, Path]]:
    """(path inside the package, source file) for every bundled file."""
    pairs: list[tuple[str, Path]] = []
    for name in BUNDLED:
        source = HERE / name
        if not source.exists():
            raise FileNotFoundError(f"{source}: missing; the wheel must bundle it (MANIFEST.in?)")
        files = [source] if source.is_file() else sorted(source.rglob("*"))
        pairs += [
            (file.relative_to(HERE).as_posix(), file)
            for file in files
            if file.is_file() and "__pycache__" not in file.parts and not file.name.startswith(".")
        ]
    return pairs


class BuildPyWithBundled(build_py):
    """`build_py` that also copies the top-level templates, examples and example config."""

    def _targets(self) -> dict[str, str]:
        package_dir = Path(self.build_lib, PACKAGE)
        return {str(package_dir / inner): str(source) for inner, source in bundled_files()}

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for target, source in self._targets().items():
            self.mkpath(str(Path(target).parent))
            self.copy_file(source, target, preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *self._targets()]

    def get_output_mapping(self) -> dict[str, str]:
        # Used by `pip install -e . --config-settings editable_mode=strict` to link the files.
        return {**super().get_output_mapping(), **self._targets()}


setup(cmdclass={"build_py": BuildPyWithBundled})
