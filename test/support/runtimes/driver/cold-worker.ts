/** workerd, cold start: a Worker whose modules import nothing of the library until its request. */
import { serveCold } from './cold.js'

export default { fetch: serveCold }
