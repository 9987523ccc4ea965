"""Reading and writing every supported format (files are side effects: they live here)."""

from prefdata.io.reader import ReadResult, read_dataset
from prefdata.io.writers import write_table

__all__ = ["ReadResult", "read_dataset", "write_table"]
