"""Reconciliation from the WorkOS Events API: events the webhooks never delivered are fetched with the workos
SDK and fed into the receiver's inbox as Events API copies, so both channels are deduped and ordered as one
stream (docs/reconcile.md)."""
