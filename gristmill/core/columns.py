"""Column names shared by every stage, so that a typo is a NameError, not a silent bug."""

from __future__ import annotations

import pyarrow as pa

ID = "id"
TEXT = "text"
SOURCE = "source"
URL = "url"
DUMP = "dump"
CRAWL_DATE = "crawl_date"

#: Columns a pipeline cannot do without: documents are identified and carry text.
REQUIRED = (ID, TEXT)

#: The provenance schema the bundled samples and the readers' defaults use.
PROVENANCE_FIELDS = (
    pa.field(ID, pa.string(), nullable=False),
    pa.field(TEXT, pa.string()),
    pa.field(SOURCE, pa.string()),
    pa.field(URL, pa.string()),
    pa.field(CRAWL_DATE, pa.timestamp("us", tz="UTC")),
    pa.field(DUMP, pa.string()),
)


def with_column(
    table: pa.Table, field: pa.Field | str, values: pa.Array | pa.ChunkedArray
) -> pa.Table:
    """The table with this column: replaced in place when an earlier stage (or an earlier run
    over this data) made one of the same name, appended otherwise."""
    name = field if isinstance(field, str) else field.name
    index = table.schema.get_field_index(name)
    if index == -1:
        return table.append_column(field, values)
    return table.set_column(index, field, values)
