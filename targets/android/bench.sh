#!/system/bin/sh
# edgedistill Android wrapper around TFLite/LiteRT benchmark_model, run through `adb shell`.
#
#   sh bench.sh BENCHMARK_MODEL [benchmark_model flags...]
#
# Prints the device state before and after the run (CPU governors and clocks, thermal zones,
# `dumpsys thermalservice` status and temperatures), each line prefixed `edgedistill-state
# PHASE`, with benchmark_model's own output (stdout and stderr) in between, and exits with
# benchmark_model's exit status. POSIX sh: runs under Android's mksh and toybox.

state() {
    phase=$1
    for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor \
             /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq \
             /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do
        [ -r "$f" ] || continue
        value=$(cat "$f" 2>/dev/null) || continue
        echo "edgedistill-state $phase sysfs ${f#/sys/devices/system/cpu/} $value"
    done
    for zone in /sys/class/thermal/thermal_zone[0-9]*; do
        [ -r "$zone/temp" ] || continue
        temp=$(cat "$zone/temp" 2>/dev/null) || continue
        kind=$(cat "$zone/type" 2>/dev/null || echo "${zone##*/}")
        echo "edgedistill-state $phase thermal_zone $kind $temp"
    done
    if command -v dumpsys >/dev/null 2>&1; then
        dumpsys thermalservice 2>/dev/null | grep -E 'Thermal Status|Temperature\{' |
            while IFS= read -r line; do echo "edgedistill-state $phase dumpsys $line"; done
    fi
}

if [ "$1" = "--probe" ]; then  # sh bench.sh --probe WORKDIR BENCHMARK_MODEL: for `lab check`
    echo "edgedistill-probe android $(getprop ro.build.version.release 2>/dev/null)"
    echo "edgedistill-probe model $(getprop ro.product.model 2>/dev/null)"
    echo "edgedistill-probe df $(df -k "$2" 2>/dev/null | tail -n 1)"
    if [ -n "$3" ] && [ -x "$3" ]; then echo "edgedistill-probe benchmark_model yes"; fi
    state now
    exit 0
fi
if [ "$#" -lt 1 ]; then
    echo "usage: sh bench.sh BENCHMARK_MODEL [flags...] | sh bench.sh --probe WORKDIR [BM]" >&2
    exit 2
fi
state before
"$@" 2>&1
status=$?
state after
exit "$status"
