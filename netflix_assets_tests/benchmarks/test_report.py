"""BENCHMARKS.md is what `make bench` writes (`benchmarks.bench.render`) plus the files of figures
measured on their own that it includes as they are: a section edited into BENCHMARKS.md alone would
be lost by the next `make bench`."""

import re

from benchmarks import bench

REPORT = bench.ROOT / "BENCHMARKS.md"
INCLUDED = (bench.SUITE_TIME, bench.MEASURED)


def _headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"#{1,6} ", line)]


def _written_headings() -> list[re.Pattern]:
    """The headings `render` writes: its string literals that start with '#', an f-string's fields as wildcards."""
    source = (bench.ROOT / "benchmarks" / "bench.py").read_text()
    literals = re.findall(r'f?"(#{1,6} [^"]*)"', source)
    return [re.compile(".*".join(re.escape(part) for part in re.split(r"\{[^}]*\}", text)) + "$") for text in literals]


def test_every_section_of_the_report_survives_a_new_make_bench():
    report = REPORT.read_text()
    kept = {h for path in INCLUDED for h in _headings(path.read_text())}
    written = _written_headings()
    lost = [h for h in _headings(report) if h not in kept and not any(p.match(h) for p in written)]
    assert lost == [], f"sections of BENCHMARKS.md that `make bench` would drop (move them to {bench.MEASURED.name}): {lost}"


def test_the_report_holds_the_included_files_as_they_are():
    report = REPORT.read_text()
    for path in INCLUDED:
        assert path.read_text().strip() in report, f"BENCHMARKS.md differs from {path.name}: edit the file, then copy it"
