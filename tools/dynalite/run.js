// Runs dynalite's command line (same flags), surviving clients that hang up in the
// middle of a request: dynalite 4.0.0 rethrows the request's 'aborted' error, which
// would end the process whenever a Go client cancels a call (a service shutting down, a
// test ending). Any other uncaught error still ends it.
'use strict'

process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    return
  }
  console.error(err)
  process.exit(1)
})

require('dynalite/cli.js')
