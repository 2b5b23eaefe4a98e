"""Is a device measurement a result? `valid`, `unverified` (no thermal/clock evidence) or `invalid`.

Invalid: fewer timed runs or seconds than the protocol asked for (and never fewer than 50 runs
and 1 s timed, 1 run and 0.5 s of warm-up), samples that disagree with the reported count, a
device that reported throttling during the run, or a delegate that was asked for and not used.
Unverified: the device let us read no temperatures or no clocks, so a throttled chip cannot be
ruled out. Governors other than `performance` are noted, not held against the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgedistill.lab.host_bench import BenchProtocol, LatencyResult

FLOOR = BenchProtocol()  # 1 warm-up run and 0.5 s, then 50 runs and 1 s: the least we trust


@dataclass
class Validity:
    status: str  # valid | unverified | invalid
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def required(protocol: BenchProtocol) -> BenchProtocol:
    """What a result must show: the protocol asked for, never less than the floor."""
    return BenchProtocol(
        threads=protocol.threads,
        warmup_runs=max(protocol.warmup_runs, FLOOR.warmup_runs),
        warmup_s=max(protocol.warmup_s, FLOOR.warmup_s),
        runs=max(protocol.runs, FLOOR.runs),
        min_seconds=max(protocol.min_seconds, FLOOR.min_seconds),
    )


def assess(result: LatencyResult, protocol: BenchProtocol) -> Validity:
    need = required(protocol)
    invalid: list[str] = []
    if result.runs < need.runs:
        invalid.append(f"{result.runs} timed runs, fewer than the {need.runs} required")
    if result.seconds < need.min_seconds * 0.999:
        invalid.append(f"timed for {result.seconds:.3f} s, less than {need.min_seconds:g} s")
    if result.warmup_runs is not None and result.warmup_runs < need.warmup_runs:
        invalid.append(f"{result.warmup_runs} warm-up runs, fewer than {need.warmup_runs}")
    if result.warmup_seconds is not None and result.warmup_seconds < need.warmup_s * 0.999:
        invalid.append(f"warm-up of {result.warmup_seconds:.3f} s, less than {need.warmup_s:g} s")
    if result.samples_ms and len(result.samples_ms) != result.runs:
        invalid.append(f"{len(result.samples_ms)} samples for {result.runs} reported runs")
    if result.samples_ms and sum(result.samples_ms) > result.seconds * 1000.0 * 1.001:
        invalid.append("the samples add up to more than the timed duration")
    invalid += _throttling(result.device_state)
    delegate = result.extra.get("delegate")
    if delegate and delegate.get("requested") and delegate.get("applied") != "fully":
        invalid.append(
            f"{delegate['requested']} delegate requested but {delegate.get('applied', 'not')} "
            "applied: the timing is not the delegate's"
        )
    if invalid:
        return Validity("invalid", invalid)

    unverified: list[str] = []
    states = [result.device_state.get(k) or {} for k in ("before", "after")]
    if not all(state.get("temps_c") or state.get("thermal_status") is not None for state in states):
        unverified.append("no temperature readable on the device")
    if not all(state.get("freq_mhz") for state in states):
        unverified.append("no CPU clock readable on the device")
    notes = [
        f"CPU governor {governor} (performance gives steadier figures)"
        for governor in sorted({g for s in states for g in (s.get("governors") or {}).values()})
        if governor != "performance"
    ]
    return Validity("unverified" if unverified else "valid", unverified, notes)


def _throttling(device_state: dict) -> list[str]:
    """Reasons from the device's own throttling reports, before and after the timed runs."""
    reasons = []
    before = (device_state.get("before") or {}).get("throttle") or {}
    after = (device_state.get("after") or {}).get("throttle") or {}
    for when, flags in (("before", before), ("after", after)):
        if flags.get("throttled_now"):
            reasons.append(
                f"the device reported throttling {when} the timed runs "
                f"(vcgencmd get_throttled={flags.get('vcgencmd_get_throttled')})"
            )
    counts = before.get("core_throttle_count"), after.get("core_throttle_count")
    if None not in counts and counts[1] > counts[0]:
        reasons.append(
            f"CPU thermal throttle events during the timed runs: {counts[1] - counts[0]}"
        )
    status = (device_state.get("after") or {}).get("thermal_status")
    if status is not None and status >= 2:  # Android: 2 = moderate and worse
        reasons.append(f"Android thermal status {status} (moderate or worse) after the runs")
    return reasons


def apply(result: LatencyResult, protocol: BenchProtocol) -> LatencyResult:
    """Set result.validity and its reasons; returns the same object."""
    verdict = assess(result, protocol)
    result.validity = verdict.status
    result.validity_reasons = verdict.reasons + verdict.notes
    return result
