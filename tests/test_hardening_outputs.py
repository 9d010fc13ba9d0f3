"""Outputs written safely (probe of 2026-12-01, D1, D7 "output cannot be written", D12).

Each test rebuilds a probe case from its reproduction, with inputs generated here.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading

import pytest

from flowsentinel.cli import main
from flowsentinel.errors import OutputClosedError, OutputError
from flowsentinel.io.outputs import check_output_dir, open_output, write_text
from tests.hardening_support import device_node


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("flowsentinel: error:") or line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- the opener itself ---------------------------------------------------------------------------


def test_a_regular_file_appears_only_complete(tmp_path):
    target = tmp_path / "v.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with open_output(target) as fh:
            fh.write("new, half\n")
            assert target.read_text() == "old\n"  # nothing under the name while writing
            raise RuntimeError("the run fails part-way")
    assert target.read_text() == "old\n"
    assert (tmp_path / "v.jsonl.partial").read_text() == "new, half\n"
    with open_output(target) as fh:
        fh.write("new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.jsonl", "v.jsonl.partial"]


def test_a_symlink_is_refused_and_its_target_left_alone(tmp_path):
    """D1, case 348: a symlinked output was replaced by a regular file, its target left stale."""
    target = tmp_path / "link_target.csv"
    target.write_text("target\n")
    link = tmp_path / "link_to_file.csv"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        write_text(link, "flows\n")
    assert link.is_symlink() and target.read_text() == "target\n"


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    for _ in range(200):  # the reader opens the FIFO first: the writer does not wait for one
        try:
            write_text(fifo, "through\n")
            break
        except OutputError as exc:
            assert "no reader" in str(exc)
            threading.Event().wait(0.01)
    reader.join(5)
    assert got == ["through\n"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_fifo_without_reader_is_refused_at_once(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="no reader"):
        write_text(fifo, "x")


def test_a_device_is_written_through_in_place(tmp_path):
    null = device_node(tmp_path, "null", 3)
    if null is None:
        pytest.skip("making a device node needs root")
    write_text(null, "gone\n")
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_disk_full_is_one_error_naming_the_file(tmp_path):
    full = device_node(tmp_path, "full", 7)
    if full is None:
        pytest.skip("making a device node needs root")
    with pytest.raises(OutputError, match=r"full: cannot write: no space left on the device"):
        write_text(full, "x" * 100_000)
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_a_path_under_a_file_names_the_file(tmp_path):
    """D7: ``-o out/a_file/x.jsonl`` said "already exists"; ``--report-dir /dev/full/x`` was NotADirectoryError."""
    (tmp_path / "a_file").write_text("x\n")
    with pytest.raises(OutputError, match=r"a_file is not a folder"):
        write_text(tmp_path / "a_file" / "x.jsonl", "")
    with pytest.raises(OutputError, match=r"exists and is not a folder"):
        check_output_dir(tmp_path / "a_file")
    with pytest.raises(OutputError, match=r"a_file is not a folder"):
        check_output_dir(tmp_path / "a_file" / "report")


@pytest.mark.parametrize("code, says", [("EDQUOT", "disk quota exceeded"), ("EROFS", "read-only file system"),
                                        ("ENOSPC", "no space left"), ("EFBIG", "file too large")])
def test_a_write_error_leaves_nothing_behind(tmp_path, code, says):
    """D7: read-only file system (a read-only bind mount in the probe), quota, size: one line, no half file."""
    import errno

    target = tmp_path / "flows.csv"
    with pytest.raises(OutputError, match=says):
        with open_output(target) as fh:
            fh.write("a\n")
            raise OSError(getattr(errno, code), code)
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_is_its_own_error():
    import errno

    from flowsentinel.io.outputs import output_error

    err = output_error("standard output", BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert isinstance(err, OutputClosedError) and err.exit_status == 141


# ---- the commands --------------------------------------------------------------------------------


def test_meter_refuses_a_symlink_and_writes_a_device_in_place(portscan, tmp_path, capsys):
    """D1, cases 342, 347, 348: meter -o replaced device nodes and symlinks by rename, exit 0."""
    target = tmp_path / "link_target.csv"
    target.write_text("target\n")
    link = tmp_path / "link_to_file.csv"
    link.symlink_to(target)
    assert main(["meter", str(portscan), "-o", str(link), "--no-progress"]) == 2
    assert "symbolic link" in _one_error_line(capsys.readouterr().err)
    assert link.is_symlink() and target.read_text() == "target\n"

    full = device_node(tmp_path, "devfull_node", 7)
    if full is None:
        pytest.skip("making a device node needs root")
    assert main(["meter", str(portscan), "-o", str(full), "--no-progress"]) == 2
    assert "no space left" in _one_error_line(capsys.readouterr().err)
    assert stat.S_ISCHR(os.lstat(full).st_mode)
    null = device_node(tmp_path, "null", 3)
    assert main(["meter", str(portscan), "-o", str(null), "--no-progress"]) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_meter_output_is_whole_or_absent(portscan, tmp_path, capsys):
    out = tmp_path / "flows.csv.gz"
    assert main(["meter", str(portscan), "-o", str(out), "--no-progress"]) == 0
    import gzip

    with gzip.open(out, "rt") as fh:
        lines = fh.read().splitlines()
    assert len(lines) > 1 and lines[0].startswith("IPV4_SRC_ADDR")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flows.csv.gz"]


def test_detect_to_a_full_disk_is_one_line(small_model, small_flows, tmp_path, capsys):
    """D7: ``detect -o /dev/full`` and ``--summary /dev/full`` gave OSError tracebacks."""
    full = device_node(tmp_path, "full", 7)
    if full is None:
        pytest.skip("making a device node needs root")
    for fmt in ("jsonl", "csv"):
        code = main(["detect", str(small_flows), "--model-dir", str(small_model), "-o", str(full), "--format", fmt,
                     "--no-progress"])
        assert code == 2 and "no space left" in _one_error_line(capsys.readouterr().err)
    code = main(["detect", str(small_flows), "--model-dir", str(small_model), "-o", str(tmp_path / "v.jsonl"),
                 "--summary", str(full), "--no-progress"])
    assert code == 2 and "no space left" in _one_error_line(capsys.readouterr().err)


def test_detect_refuses_a_symlinked_output_before_scoring(small_model, small_flows, tmp_path, capsys):
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("keep\n")
    (tmp_path / "v.jsonl").symlink_to(target)
    code = main(["detect", str(small_flows), "--model-dir", str(small_model), "-o", str(tmp_path / "v.jsonl"),
                 "--no-progress"])
    assert code == 2 and "symbolic link" in _one_error_line(capsys.readouterr().err)
    assert target.read_text() == "keep\n"


def test_detect_into_a_closed_pipe_is_one_line_and_141(small_model, small_flows):
    """D7: ``detect ... | head -1`` gave a BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "flowsentinel.cli", "detect", str(small_flows), "--model-dir",
                             str(small_model), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            )
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141
    assert "broken pipe" in _one_error_line(err)


def test_info_into_a_full_disk_is_one_line(small_model, tmp_path):
    full = device_node(tmp_path, "full", 7)
    if full is None:
        pytest.skip("making a device node needs root")
    with open(full, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "flowsentinel.cli", "info", "--model-dir", str(small_model)],
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2 and "standard output" in _one_error_line(proc.stderr)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_detect_leaves_a_summary_of_what_was_done(small_model, small_flows, tmp_path, monkeypatch,
                                                                  capsys, signum):
    """D12, cases 314-316: SIGINT left no summary and no count; SIGTERM killed the process."""
    import flowsentinel.serving.detect as serving

    real = serving.FlowReader

    class HalfThenSignal(real):
        """Yields half of the flows, then the signal arrives (as from another process)."""

        def __iter__(self):
            for frame in super().__iter__():
                half = len(frame) // 2
                yield frame.iloc[:half]
                os.kill(os.getpid(), signum)
                yield frame.iloc[half:]

    monkeypatch.setattr(serving, "FlowReader", HalfThenSignal)
    out, summary = tmp_path / "v.jsonl", tmp_path / "s.json"
    code = main(["detect", str(small_flows), "--model-dir", str(small_model), "-o", str(out), "--summary",
                 str(summary), "--no-progress"])
    assert code == 128 + signum
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # main() puts the default back
    err = capsys.readouterr().err
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    stopped = [line for line in err.splitlines() if line.startswith("detect: stopped by")]
    assert len(stopped) == 1 and name in stopped[0] and "150 flows scored" in stopped[0]
    saved = json.loads(summary.read_text())
    assert saved["complete"] is False and saved["stopped_by"] == name and saved["n_flows"] == 150
    assert not out.exists()  # nothing that looks complete
    written = (tmp_path / "v.jsonl.partial").read_text().splitlines()
    assert written and all(json.loads(line) for line in written)  # whole records, kept apart from the name


def test_a_live_output_grows_in_place_and_refuses_links(tmp_path):
    """``collect`` and ``detect --interface`` write what readers follow while it grows: in place, no rename."""
    target = tmp_path / "alerts.jsonl"
    with open_output(target, live=True) as fh:
        fh.write("one\n")
        assert target.read_text() == "one\n"  # visible at once, line by line
    (tmp_path / "link.jsonl").symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        with open_output(tmp_path / "link.jsonl", live=True):
            pass
    assert target.read_text() == "one\n"


def test_a_signal_during_meter_says_what_was_metered(portscan, tmp_path, monkeypatch, capsys):
    """D12 for meter: SIGTERM while writing flows; what was metered is printed, nothing looks complete."""
    from flowsentinel.metering.meter import MeterRun

    real = MeterRun.chunks

    def chunks_then_signal(self):
        for chunk in real(self):
            yield chunk
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(MeterRun, "chunks", chunks_then_signal)
    out = tmp_path / "flows.csv"
    assert main(["meter", str(portscan), "-o", str(out), "--no-progress"]) == 143
    err = capsys.readouterr().err
    assert any(line.startswith("meter: interrupted; ") and "flows from" in line for line in err.splitlines()), err
    assert not out.exists() and (tmp_path / "flows.csv.partial").read_text().startswith("IPV4_SRC_ADDR")


def test_commands_on_a_read_only_mount_are_refused_before_the_work(small_model, small_flows, tmp_path):
    """D7, read-only file system: the probe's read-only bind mount gave OSError tracebacks for ``detect -o``,
    ``evaluate`` (its report folder inside the model directory) and ``train --model-dir`` (after training)."""
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a read-only folder")
    ro = tmp_path / "ro"
    (ro / "outdir").mkdir(parents=True)
    shutil.copytree(small_model, ro / "m_ro")
    mount = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount + f"touch {ro}/probe"], capture_output=True, text=True)
    if "Read-only" not in probe.stderr:
        pytest.skip(f"cannot mount a read-only folder here: {probe.stderr.strip()}")
    cli = f'"{sys.executable}" -m flowsentinel.cli'
    runs = {
        "detect": f"{cli} detect {small_flows} --model-dir {small_model} -o {ro}/outdir/x.jsonl --no-progress",
        "evaluate": f"{cli} evaluate --model-dir {ro}/m_ro --data {small_flows}",
        "train": f"{cli} train --data {small_flows} --model-dir {ro}/newmodel --epochs 1 --no-reference",
    }
    for name, command in runs.items():
        done = subprocess.run(["unshare", "-m", "sh", "-c", mount + command], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        line = _one_error_line(done.stderr)
        assert done.returncode == 2 and "read-only file system" in line and str(ro) in line, (name, line)
        assert "epoch" not in done.stderr.lower(), name  # refused before training, not after it
    assert sorted(p.name for p in ro.iterdir()) == ["m_ro", "outdir"] and not list((ro / "outdir").iterdir())


def test_detect_to_a_full_disk_by_redirect_and_from_a_capture(small_model, small_flows, portscan, tmp_path):
    """D7: ``detect ... > /dev/full`` and ``detect capture.pcap -o /dev/full`` gave OSError tracebacks."""
    full = device_node(tmp_path, "full", 7)
    if full is None:
        pytest.skip("making a device node needs root")
    cli = [sys.executable, "-m", "flowsentinel.cli", "detect"]
    with open(full, "w") as out:
        redirect = subprocess.run([*cli, str(small_flows), "--model-dir", str(small_model), "--no-progress"],
                                  stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert redirect.returncode == 2 and "standard output" in _one_error_line(redirect.stderr)
    capture = subprocess.run([*cli, str(portscan), "--model-dir", str(small_model), "-o", str(full), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert capture.returncode == 2 and "no space left" in _one_error_line(capture.stderr)
    assert stat.S_ISCHR(os.lstat(full).st_mode)
