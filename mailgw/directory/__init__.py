"""The organisation directory: units (head, administrators) and users (address -> unit).

Used by the `classify` stage (the sender's unit, which per-unit policy overrides and violation
records use) and by notices (who heads the unit, who administers it). Filled from a CSV file by
`mailgw directory import`; see `mailgw.directory.store` and config/directory.example.csv.
"""

from mailgw.directory.store import (
    DirectoryError,
    UnitInfo,
    import_csv,
    lookup_unit,
    show,
    unit_info,
)

__all__ = ["DirectoryError", "UnitInfo", "import_csv", "lookup_unit", "show", "unit_info"]
