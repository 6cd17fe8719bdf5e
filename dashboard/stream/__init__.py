"""Stage two: events encoded once and fanned out to every viewer (SSE), with history to resume from."""
