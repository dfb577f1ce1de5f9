"""``mien report`` and ``mien episodes`` through the subcommands ``register`` adds."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from mien.errors import InputError
from mien.reporting.cli import register
from mien.reporting.synthetic import demo_results


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mien")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "clip.csv"
    demo_results(duration_s=20.0, n_tracks=2).to_csv(path, index=False)
    return path


def test_report_subcommand(results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.csv"
    events.write_text("time_s,end_s,label\n2,,question\n7,9,joke\n")
    out = tmp_path / "r.html"
    args = parse(["report", str(results_file), "-o", str(out), "--events", str(events), "--window", "0,1.5",
                  "--min-prob", "0.6", "--min-duration", "1", "--max-gap", "0.1", "--bootstrap", "200"])
    assert args.func(args) == 0
    text = out.read_text()
    assert "[0, 1.5) s after each event" in text
    assert "at least 0.6, for at least 1 s; gaps up to 0.1 s" in text
    assert capsys.readouterr().out.strip() == str(out)


def test_report_default_output_path(results_file: Path) -> None:
    args = parse(["report", str(results_file)])
    assert args.func(args) == 0
    assert results_file.with_name("clip.csv.report.html").is_file()


def test_episodes_subcommand(results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["episodes", str(results_file)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("source,track_id,label,onset_s,apex_s,apex_value,offset_s,duration_s,n_frames")
    out = tmp_path / "eps.csv"
    args = parse(["episodes", str(results_file), "-o", str(out), "--min-prob", "0.7"])
    assert args.func(args) == 0
    table = pd.read_csv(out)
    assert set(table["label"]) == {"happiness"}  # only the smile bouts reach 0.7
    assert len(table) == 2 and (table["apex_value"] >= 0.7).all()


def test_bad_input_raises_input_error(tmp_path: Path, results_file: Path) -> None:
    args = parse(["report", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "r.html")])
    with pytest.raises(InputError, match="missing.parquet"):
        args.func(args)
    args = parse(["report", str(results_file), "--window", "2,1"])
    with pytest.raises(InputError, match="window"):
        args.func(args)
    with pytest.raises(SystemExit) as info:  # numeric flags are checked when parsed: a usage error
        parse(["episodes", str(results_file), "--min-prob", "2"])
    assert info.value.code == 2


def test_main_cli_prints_one_line_for_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = pytest.importorskip("mien.cli", reason="the main CLI is not available")
    code = cli.main(["report", str(tmp_path / "missing.parquet")])
    assert code != 0
    err = capsys.readouterr().err
    assert "missing.parquet" in err and "Traceback" not in err
