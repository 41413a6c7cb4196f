-- A structured call whose reply failed validation is kept (the audit trail, and its tokens stay
-- charged) but marked with why it failed, so replay and resume never serve it as an answer and
-- ask the question again instead. NULL: the reply was usable.
ALTER TABLE llm_calls ADD COLUMN failure TEXT;
