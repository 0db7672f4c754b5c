"""``markdown(results)``: bench/gpu_decode.py's JSON as a docs/PERFORMANCE.md section.

    python3 bench/gpu_render.py gpu_decode.json          # prints the section

Stdlib only, like the bench itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROW_LABELS = {
    "transcode_cpu": "transcode, CPU decode",
    "transcode_nvdec": "transcode, NVDEC decode",
    "decode_cpu": "decode only, CPU",
    "decode_nvdec": "decode only, NVDEC",
}


def _num(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}{suffix}"


def _ratio_text(value: float | None, better_below: bool) -> str:
    if value is None:
        return "–"
    if better_below:
        verdict = "faster" if value < 1 else "slower"
        return f"**{value:.2f}** ({abs(1 - value) * 100:.0f} % {verdict} with NVDEC)"
    return f"**{value:.2f}×**"


def markdown(results: dict[str, Any]) -> str:
    """The section "GPU decode (NVDEC) on real hardware" for docs/PERFORMANCE.md."""
    host, gpu, ffmpeg, clip = (results.get(key, {}) for key in ("host", "gpu", "ffmpeg", "clip"))
    lines = ["## GPU decode (NVDEC) on real hardware", ""]
    gpus = "; ".join(gpu.get("gpus") or []) or "no GPU found"
    lines += [
        f"`bench/gpu_decode.py`, {results.get('started', '?')}: {gpus}, "
        f"{host.get('cpus')} × {host.get('cpu_model')} ({host.get('glibc')}); "
        f"{ffmpeg.get('version', '?')} (Debian 12's build, carried by `bench/gpu_decode.sh`).",
        "",
        f"Clips: {clip.get('width')}×{clip.get('height')} at {clip.get('fps')} fps, "
        f"{clip.get('seconds'):g} s of `{clip.get('source')}`, "
        + ", ".join(f"{codec} {info.get('mbps')} Mb/s"
                    for codec, info in (clip.get("codecs") or {}).items())
        + ". Rows run the worker's argv for a re-encoding transcode (libx264 veryfast, crf 23; "
        "`-threads N` as the worker adds it), the NVDEC rows as `gpu_argv_variant` makes it "
        "(`-hwaccel cuda`, frames back in system memory); decode-only rows keep the input side "
        "and write to `-f null`. Median of "
        f"{_repeats(results)} interleaved runs; \"N of M cores\" pins the bench to N CPUs.",
        "",
    ]
    verify = (results.get("nvdec") or {}).get("verify") or {}
    for codec, check in verify.items():
        if check.get("ok"):
            util = check.get("decoder_util_max")
            lines.append(f"- NVDEC {codec}: ran (exit 0, no fallback message; filters received "
                         f"`{check.get('filter_input_pixfmt')}`"
                         + (f", decoder utilisation up to {util:.0f} %" if util is not None
                            else "") + ").")
        else:
            error = check.get("error_summary") or check.get("error") or "unknown error"
            lines.append(f"- NVDEC {codec}: **unavailable**: `{error.splitlines()[0][:200]}`")
    if verify:
        lines.append("")

    configs = results.get("configs") or []
    if configs:
        lines += ["| CPU budget | codec | run | median s | fps | GPU decoder util max |",
                  "|---|---|---|---:|---:|---:|"]
        for config in configs:
            for codec, block in (config.get("codecs") or {}).items():
                for name, label in ROW_LABELS.items():
                    row = (block.get("rows") or {}).get(name)
                    if row is None:
                        continue
                    if row.get("unavailable") or row.get("median") is None:
                        lines.append(f"| {config['name']} | {codec} | {label} | n/a | | |")
                        continue
                    util = row.get("decoder_util_max")
                    lines.append(
                        f"| {config['name']} | {codec} | {label} | {_num(row['median'], 3)} | "
                        f"{_num(row.get('fps'), 0)} | "
                        f"{'–' if util is None else f'{util:.0f} %'} |")
        lines += ["", "| CPU budget | codec | transcode NVDEC ÷ CPU | decode-only speed-up "
                      "(CPU ÷ NVDEC) | decode share of the CPU transcode |",
                  "|---|---|---|---|---:|"]
        for config in configs:
            for codec, block in (config.get("codecs") or {}).items():
                r = block.get("ratios") or {}
                lines.append(
                    f"| {config['name']} | {codec} | "
                    f"{_ratio_text(r.get('transcode_nvdec_over_cpu'), True)} | "
                    f"{_ratio_text(r.get('decode_speedup_nvdec'), False)} | "
                    f"{_num(r.get('decode_share_of_cpu_transcode'), 2)} |")
        lines.append("")
    for note in results.get("notes") or []:
        lines.append(f"- note: {note}")
    if results.get("notes"):
        lines.append("")
    return "\n".join(lines)


def _repeats(results: dict[str, Any]) -> int | str:
    for config in results.get("configs") or []:
        for block in (config.get("codecs") or {}).values():
            for row in (block.get("rows") or {}).values():
                if row.get("runs"):
                    return row["runs"]
    return "?"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/gpu_render.py gpu_decode.json")
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
