"""The guide's Python chapter shows this folder's files as they are: a change to
either file, or to the guide's copy, fails here until both agree."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GUIDE = HERE.parent.parent / "docs" / "plugin-guide.md"


@pytest.mark.parametrize("name", ["policy.py", "test_policy.py"])
def test_the_guide_shows_the_file_verbatim(name: str) -> None:
    chapter = GUIDE.read_text().split("<!-- python chapter -->")[1].split("<!-- end python chapter -->")[0]
    block = f"```python\n{(HERE / name).read_text()}```\n"
    assert block in chapter, f"docs/plugin-guide.md's Python chapter must show {name} verbatim"
