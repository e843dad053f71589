"""The hostile-content guard: what a job's input holds that a user should know of.

:func:`scan_file` detects the input's type and looks for what makes a document
hostile or suspicious (macros, scripts, actions, external references, XXE,
decompression bombs, polyglots, the EICAR string, the operator's YARA rules);
:func:`security_section` applies the policy of each kind of finding for the job's
tenant and makes the ``security`` section of the job's result, or refuses the job.
The scan reads bounded pieces of the input within a time and decompression budget,
and a scanner's failure is a ``scan_error`` finding, never a failed job.
"""

from __future__ import annotations

from docworker.guard.findings import Finding, SecurityReport
from docworker.guard.policy import apply_policy, security_section
from docworker.guard.scan import scan_file
from docworker.guard.signatures import YaraUnavailable, load_rules

__all__ = [
    "Finding",
    "SecurityReport",
    "YaraUnavailable",
    "apply_policy",
    "load_rules",
    "scan_file",
    "security_section",
]
