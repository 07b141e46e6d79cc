/** workerd: the Worker's module, `export default { fetch }` as a Worker is written. */
import { serve } from './server.js'

export default { fetch: serve }
