"""What providers send back: delivery reports and customers' replies, through signed webhooks.

`signatures` verifies each provider's scheme over the raw bytes; `reports` moves messages to
delivered or failed; `replies` turns an inbound message into a `Message Received` event on the
customer's timeline. One module per provider parses its payloads into those two kinds.
"""
