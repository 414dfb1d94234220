-- Schema version 4: how the user of a grant signed in.
--
-- `login` is 'password' or 'upstream'; `login_email` the verified email an upstream user
-- was admitted with. At start the provider revokes the live grants of users its login
-- methods no longer admit (removed from the users file or the allow-list). Grants created
-- before this version have no login (NULL) and are left alone.

ALTER TABLE grants ADD COLUMN login TEXT CHECK (login IN ('password', 'upstream'));
ALTER TABLE grants ADD COLUMN login_email TEXT;
CREATE INDEX grants_subject ON grants (subject);
