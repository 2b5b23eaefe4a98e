"""The device lab: lab files, transports (local, ssh, adb), platforms (linux, android), audits."""
