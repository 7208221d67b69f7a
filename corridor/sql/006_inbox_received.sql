-- Pruning (corridor.inbox.InboxPruner) deletes a consumer's oldest ids: this finds them without
-- reading the whole inbox. Appended to at its right end per consumer, as ids arrive in time order.
CREATE INDEX inbox_received ON inbox (consumer, received_at);
