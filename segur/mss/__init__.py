"""MSSanté checks: a submitted message (X-MSS-* headers, subject, attachments) and its IHE XDM archive."""

from segur.mss.message import archive_of_message, patient_of_message, validate_mss_message
from segur.mss.xdm import XdmCda, XdmEntry, XdmError, XdmPackage, XdmSubset, read_xdm, validate_xdm, xdm_findings

__all__ = [
    "XdmCda",
    "XdmEntry",
    "XdmError",
    "XdmPackage",
    "XdmSubset",
    "archive_of_message",
    "patient_of_message",
    "read_xdm",
    "validate_mss_message",
    "validate_xdm",
    "xdm_findings",
]
