"""XDS metadata of the DMP: value sets, the ITI-41 metadata validator, the submission-set signature."""

from segur.xds.metadata import InsOids, check_of, validate_submission
from segur.xds.signature import document_uri
from segur.xds.valuesets import Concept, ValueSets, value_sets

__all__ = ["Concept", "InsOids", "ValueSets", "check_of", "document_uri", "validate_submission", "value_sets"]
