"""``audiolatent list`` and ``audiolatent info NAME`` answer from a static catalogue without importing
torch (issue 18, item 7), and that catalogue (``src/audiolatent/core/catalogue.py``, written by
``scripts/make_catalogue.py``) says what the real registry and tokenizers say."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import audiolatent.tokenizers  # noqa: F401  (registers every built-in: the torch path)
from audiolatent.core import catalogue, registry
from audiolatent.tokenizers.adapters import base as adapters

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_catalogue.py"
REGENERATE = "stale catalogue: run python scripts/make_catalogue.py"

PROBE = """
import sys
from audiolatent.cli.main import main
code = main(sys.argv[1:])
print("torch loaded" if "torch" in sys.modules else "no torch", code)
"""


def _script():
    spec = importlib.util.spec_from_file_location("make_catalogue", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args", [["list"], ["info", "mel-16k"], ["info", "--json", "codec-16k-default"],
                                  ["info", "opus-6k"]])
def test_list_and_info_of_a_builtin_do_not_import_torch(args):
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("no torch 0"), out


def test_info_from_the_catalogue_prints_what_the_built_tokenizer_describes(capsys):
    from audiolatent.cli.main import main

    assert main(["info", "--json", "dmel-16k"]) == 0
    assert json.loads(capsys.readouterr().out) == registry.load_tokenizer("dmel-16k").describe()


@pytest.mark.parametrize("name", sorted(catalogue.BUILTINS))
def test_catalogue_facts_equal_the_tokenizers_describe(name):
    entry = catalogue.BUILTINS[name]
    missing = [p for p in entry["requires"] if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"{name} needs {missing}")
    assert registry.load_tokenizer(name).describe() == entry["facts"], REGENERATE
    assert registry.builtin_facts(name) == entry["facts"]


def test_catalogue_names_equal_the_registrys(monkeypatch):
    script = _script()
    builtins = [e for e in registry.list_tokenizers() if script.is_builtin(e)]  # not names other tests registered
    monkeypatch.setattr(registry, "_NAMES", {e.name: e for e in builtins})
    monkeypatch.setattr(registry, "_plugins_loaded", False)  # as in a fresh `audiolatent list`: the catalogue answers
    monkeypatch.setattr(registry, "_has_plugins", lambda: False)
    assert registry.list_names() == [(e.name, e.family, e.description) for e in builtins], REGENERATE
    assert sorted(catalogue.ADAPTERS) == sorted(adapters.ADAPTERS), REGENERATE
    for name, entry in catalogue.ADAPTERS.items():
        spec = adapters.ADAPTERS[name]
        assert entry == {"description": spec.description, "package": spec.package, "hub_id": spec.hub_id,
                         "revision": spec.revision, "config_file": spec.config_file}, REGENERATE
    assert catalogue.ADAPTER_EXTRA == adapters.EXTRA
    for entry in catalogue.BUILTINS.values():
        assert entry["requires"] == script.REQUIRES.get(entry["facts"]["kind"], []), REGENERATE


@pytest.mark.parametrize("package_missing", [False, True])
def test_adapter_status_without_torch_equals_the_adapters_own(monkeypatch, package_missing):
    if package_missing:
        find_spec = importlib.util.find_spec
        packages = {spec.package for spec in adapters.ADAPTERS.values()}
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in packages else find_spec(name, *a))
    for name in catalogue.ADAPTERS:
        assert registry.adapter_status(name) == adapters.adapter_status(name)


def test_names_the_catalogue_lacks_take_the_torch_path(monkeypatch):
    entry = registry.TokenizerEntry("zz-registered-here", lambda: None, "registered in this process", "neural")
    monkeypatch.setitem(registry._NAMES, entry.name, entry)
    assert (entry.name, "neural", entry.description) in registry.list_names()
    assert registry.builtin_facts(entry.name) is None and registry.builtin_facts("./some/checkpoint") is None


def test_an_installed_plugin_takes_the_torch_path(monkeypatch):
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "_has_plugins", lambda: True)
    called = []
    monkeypatch.setattr(registry, "list_tokenizers", lambda: called.append(1) or [])
    assert registry.list_names() == [] and called


def test_a_classical_codec_whose_package_is_missing_is_built_to_say_so(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pycodec2" else find_spec(name, *a))
    assert registry.builtin_facts("codec2-3200") is None and registry.builtin_facts("mel-16k") is not None
