"""Annotators (local zero-shot, external vision-language API), batch runs and their CLI."""
