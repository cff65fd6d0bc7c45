"""The one rule for when a catalogue update may set an item's vector, shared by the worker
(:mod:`streamrec.streams.catalogue`, cold start in ``streams/app.py``) and the online trainer
(:mod:`streamrec.trainer.items`), so their item matrices never diverge.

A trained item (a row with a trained id embedding) keeps its trained vector: a catalogue update
carrying the same or new text, or a vector, does not replace it; a text-only vector would throw
away what training learned from behaviour, and the trainer, which keeps the id row, would disagree
with the workers. Only an update marked ``content_change`` (the item is now something else)
replaces it, in both places: the item then becomes text-only (the trainer clears its id row, the
worker takes the text-only vector). Items without a trained row (new since training, or never
clicked in it) take the update's vector, or one from its text.
"""

from __future__ import annotations

from streamrec.contracts.items import ItemUpdate


def refreshes_vector(update: ItemUpdate, trained: bool) -> bool:
    """Whether ``update`` sets the vector of an item that has (``trained``) or lacks a trained row."""
    return update.content_change or not trained
