"""The device lab: lab files, transports (local, ssh, adb), device-side benchmarks, audits."""
