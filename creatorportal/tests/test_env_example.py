import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (BASE_DIR / "creatorportal" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', settings_source))
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', settings_source))
    read.discard("PORTAL_VAR_DIR")  # test and tooling only
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.MULTILINE))

    assert read - listed == set()
