"""Pure-torch modules of the world model and the thin user-facing ``WorldModel`` class."""
